# A Debian-like disk whose root is an ext4 filesystem in a linear LVM logical
# volume: MBR, one LVM partition (type 8e) at 1 MiB holding VG "vg0" with
# LV "root" (written by lvmgen: lvm2 needs devices).
# tools: sfdisk mkfs.ext4 go
. testdata/images/lib.sh
. testdata/images/rootfs-debian.sh
out=$1
work=$(mktemp -d)
root_uuid=6b8f4c64-1c1e-4f0e-9a0b-00000000b1f0
debian_tree "$work/tree" "$root_uuid"
truncate -s 80M "$work/rootfs"
mkfs.ext4 -q -F -d "$work/tree" -U "$root_uuid" -L root "$work/rootfs"
go run ./testdata/images/lvmgen -out "$work/pv" -size 90M -vg vg0 -id-seed debian-lvm \
  -lv root="$work/rootfs"
truncate -s 96M "$out"
printf 'label: dos\nlabel-id: 0x1dea5e12\n1MiB,,8e,*\n' | sfdisk -q "$out"
place "$work/pv" "$out" $MiB
rm -rf "$work"
