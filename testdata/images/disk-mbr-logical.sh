# An MBR disk with an ext4 root primary partition and an extended partition
# holding logical ones: a swap partition (in fstab) and an ext4 /home.
# tools: sfdisk mkfs.ext4 mkswap
. testdata/images/lib.sh
. testdata/images/rootfs-debian.sh
out=$1
work=$(mktemp -d)
root_uuid=10910000-0000-4000-8000-0000000000ff
debian_tree "$work/root" "$root_uuid"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n/dev/sda5 none swap sw 0 0\nLABEL=home /home ext4 defaults 0 2\n' "$root_uuid" > "$work/root/etc/fstab"
truncate -s 64M "$work/rootfs"
mkfs.ext4 -q -F -d "$work/root" -U "$root_uuid" "$work/rootfs"
truncate -s 16M "$work/swap"
mkswap -q -U 10910000-0000-4000-8000-00000000005a "$work/swap"
mkdir -p "$work/home/user"
echo "hello" > "$work/home/user/notes.txt"
truncate -s 16M "$work/homefs"
mkfs.ext4 -q -F -d "$work/home" -L home "$work/homefs"

truncate -s 112M "$out"
sfdisk -q "$out" <<SFDISK
label: dos
label-id: 0x10910000
1MiB,64MiB,L,*
,,E
,16MiB,S
,16MiB,L
SFDISK
place "$work/rootfs" "$out" $MiB
# The logical partitions are where sfdisk put them (after their EBRs).
dd if="$work/swap" of="$out" bs=512 seek=$(sfdisk -d "$out" | awk '/5 : start=/ { gsub(/,/,""); print $4 }') conv=notrunc,sparse status=none
dd if="$work/homefs" of="$out" bs=512 seek=$(sfdisk -d "$out" | awk '/6 : start=/ { gsub(/,/,""); print $4 }') conv=notrunc,sparse status=none
rm -rf "$work"
