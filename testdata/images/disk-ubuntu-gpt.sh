# An Ubuntu 22.04-like disk that boots both ways: GPT with a BIOS boot
# partition (Gen1) and an ESP with EFI/BOOT/BOOTX64.EFI (Gen2), an ext4
# /boot and an ext4 root, mounted by UUID.
# tools: sfdisk mkfs.ext4 mkfs.vfat mcopy
. testdata/images/lib.sh
. testdata/images/rootfs-debian.sh
out=$1
work=$(mktemp -d)
root_uuid=0b0b0000-0000-4000-8000-0000000000ff
boot_uuid=0b0b0000-0000-4000-8000-00000000b007
esp_id=0B0B-0E5F

debian_tree "$work/root" "$root_uuid"
cat > "$work/root/etc/os-release" <<'OS'
PRETTY_NAME="Ubuntu 22.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.3 LTS (Jammy Jellyfish)"
ID=ubuntu
ID_LIKE=debian
OS
printf 'UUID=%s / ext4 discard,errors=remount-ro 0 1\nUUID=%s /boot ext4 defaults 0 2\nUUID=%s /boot/efi vfat umask=0077 0 1\n' \
  "$root_uuid" "$boot_uuid" "$esp_id" > "$work/root/etc/fstab"
# /boot lives on its own partition: move the tree's boot files there.
mkdir -p "$work/boot"
mv "$work/root/boot/"* "$work/boot/"
mkdir -p "$work/root/boot/efi"

truncate -s 32M "$work/esp"
mkfs.vfat -F 16 -n UEFI -i ${esp_id/-/} "$work/esp" >/dev/null
printf 'MZ shim' > "$work/shim"
mmd -i "$work/esp" ::/EFI ::/EFI/BOOT ::/EFI/ubuntu
mcopy -i "$work/esp" "$work/shim" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$work/esp" "$work/shim" ::/EFI/ubuntu/shimx64.efi
# Ubuntu's ESP grub.cfg hands over to the one on /boot, found by UUID.
printf "search.fs_uuid %s root\nset prefix=(\$root)'/grub'\nconfigfile \$prefix/grub.cfg\n" "$boot_uuid" > "$work/esp-grub.cfg"
mcopy -i "$work/esp" "$work/esp-grub.cfg" ::/EFI/ubuntu/grub.cfg

truncate -s 64M "$work/bootfs"
mkfs.ext4 -q -F -d "$work/boot" -U "$boot_uuid" -L boot "$work/bootfs"
truncate -s 96M "$work/rootfs"
mkfs.ext4 -q -F -d "$work/root" -U "$root_uuid" -L cloudimg-rootfs "$work/rootfs"

truncate -s 200M "$out"
sfdisk -q "$out" <<SFDISK
label: gpt
label-id: 0B0B0000-0000-4000-8000-0000000D15C0
size=1MiB, type=21686148-6449-6E6F-744E-656564454649, uuid=0B0B0000-0000-4000-8000-0000000000B1
size=32MiB, type=U, uuid=0B0B0000-0000-4000-8000-0000000000E1
size=64MiB, type=BC13C2FF-59E6-4262-A352-B275FD6F7172, uuid=0B0B0000-0000-4000-8000-0000000000B0
size=96MiB, type=L, name=root, uuid=0B0B0000-0000-4000-8000-0000000000F1
SFDISK
place "$work/esp" "$out" $((2 * MiB))
place "$work/bootfs" "$out" $((34 * MiB))
place "$work/rootfs" "$out" $((98 * MiB))
# GRUB's boot.img in the MBR, core.img in the BIOS boot partition.
printf 'GRUB \0Geom\0Hard Disk\0Read\0 Error' | dd of="$out" bs=1 seek=384 conv=notrunc status=none
printf 'GRUB core image' | dd of="$out" bs=1 seek=$MiB conv=notrunc status=none
rm -rf "$work"
