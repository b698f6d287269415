# A Debian 12-like disk: MBR, one ext4 root partition at 1 MiB, GRUB-like
# boot code in the MBR, 96 MiB, sparse.
# tools: sfdisk mkfs.ext4
. testdata/images/lib.sh
. testdata/images/rootfs-debian.sh
out=$1
root_uuid=6b8f4c64-1c1e-4f0e-9a0b-00000000d12a
tree=$(mktemp -d)
debian_tree "$tree" "$root_uuid"
truncate -s 96M "$out"
printf 'label: dos\nlabel-id: 0x1dea5e11\n1MiB,,L,*\n' | sfdisk -q "$out"
fs=$(mktemp)
truncate -s 95M "$fs"
mkfs.ext4 -q -F -d "$tree" -U "$root_uuid" -L root "$fs"
place "$fs" "$out" $MiB
# GRUB's boot.img carries the string "GRUB " in its boot code area.
printf 'GRUB \0Geom\0Hard Disk\0Read\0 Error' | dd of="$out" bs=1 seek=384 conv=notrunc status=none
rm -f "$fs"
