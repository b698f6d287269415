# For the check benchmark: a 2 GiB MBR disk with an ext4 root holding two
# kernels, each with a zstd initramfs of about 40 MB (firmware-like data
# that does not compress, as real initramfs files carry).
# tools: sfdisk mkfs.ext4 cpio zstd
. testdata/images/lib.sh
. testdata/images/rootfs-debian.sh
. testdata/images/initrd-lib.sh
out=$1
work=$(mktemp -d)
debian_tree "$work/root"
old=6.1.0-12-cloud-amd64
mkdir -p "$work/root/usr/lib/modules/$old"
cp "$work/root/usr/lib/modules/6.1.0-13-cloud-amd64/"modules.* "$work/root/usr/lib/modules/$old/"
cp "$work/root/boot/config-6.1.0-13-cloud-amd64" "$work/root/boot/config-$old"
echo "not a real kernel" > "$work/root/boot/vmlinuz-$old"
for kver in 6.1.0-13-cloud-amd64 $old; do
  t=$work/initrd-$kver
  initrd_ucode "$t/early"
  initrd_tree "$t/main" "$kver" usr/lib/modules "" hv_vmbus hv_storvsc hv_netvsc
  mkdir -p "$t/main/usr/lib/firmware"
  head -c 40M /dev/urandom > "$t/main/usr/lib/firmware/blob.bin"
  { initrd_cpio "$t/early"; initrd_cpio "$t/main" | zstd -q -3; } > "$work/root/boot/initrd.img-$kver"
  rm -rf "$t"
done
truncate -s 2G "$out"
printf 'label: dos\n1MiB,,L,*\n' | sfdisk -q "$out"
truncate -s 2047M "$work/fs"
mkfs.ext4 -q -F -d "$work/root" -U 6b8f4c64-1c1e-4f0e-9a0b-00000000d12a "$work/fs"
place "$work/fs" "$out" $MiB
rm -rf "$work"
