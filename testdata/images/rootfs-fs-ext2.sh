# A bare ext2 with 1 KiB blocks: block maps down to triple indirect blocks, holding the rootfs-fs tree.
# tools: mkfs.ext2 e2fsck debugfs
. testdata/images/lib.sh
. testdata/images/rootfs-fs-lib.sh
out=$1
root=$(mktemp -d)
rootfs_fs_tree "$root"
truncate -s 64M "$out"
mkfs.ext2 -b 1024 -q -F -U 6b8f4c64-1c1e-4f0e-9a0b-0000000f5e04 -L rfs-ext2 -d "$root" "$out"
rootfs_fs_ext_finish "$out"
