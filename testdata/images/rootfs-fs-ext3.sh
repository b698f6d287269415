# A bare ext3: a journal and block maps, 4 KiB blocks, holding the rootfs-fs tree.
# tools: mkfs.ext3 e2fsck debugfs
. testdata/images/lib.sh
. testdata/images/rootfs-fs-lib.sh
out=$1
root=$(mktemp -d)
rootfs_fs_tree "$root"
truncate -s 64M "$out"
mkfs.ext3 -b 4096 -q -F -U 6b8f4c64-1c1e-4f0e-9a0b-0000000f5e03 -L rfs-ext3 -d "$root" "$out"
rootfs_fs_ext_finish "$out"
