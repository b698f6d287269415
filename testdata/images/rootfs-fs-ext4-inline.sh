# A bare ext4 with inline data (small files and directories inside their inodes), holding the rootfs-fs tree.
# tools: mkfs.ext4 e2fsck debugfs
. testdata/images/lib.sh
. testdata/images/rootfs-fs-lib.sh
out=$1
root=$(mktemp -d)
rootfs_fs_tree "$root"
truncate -s 64M "$out"
mkfs.ext4 -b 4096 -O inline_data -q -F -U 6b8f4c64-1c1e-4f0e-9a0b-0000000f5e02 -L rfs-ext4-inline -d "$root" "$out"
rootfs_fs_ext_finish "$out"
