# Three bare filesystems of one guest side by side, no partition table:
# an ext4 root (0-32 MiB) whose fstab mounts the ext4 /boot (32-48 MiB)
# by LABEL and the vfat ESP (48-56 MiB) by UUID, and lists a disk that is
# not there, a nofail one, swap and tmpfs. /vmlinuz is an absolute
# symlink into /boot, as Debian makes it.
# tools: mkfs.ext4 mkfs.vfat mcopy mmd
. testdata/images/lib.sh
out=$1
work=$(mktemp -d)
mkdir -p "$work/root/etc" "$work/root/boot" "$work/root/usr/bin" "$work/boot/grub" "$work/efi/EFI/BOOT"
cat > "$work/root/etc/fstab" <<'FSTAB'
# /etc/fstab: static file system information.
UUID=6b8f4c64-1c1e-4f0e-9a0b-0000000a55e1 /         ext4 errors=remount-ro 0 1
LABEL=guestboot                            /boot     ext4 defaults          0 2
UUID=ABCD-1234                             /boot/efi vfat umask=0077        0 1
/dev/sdb1                                  /data     xfs  defaults          0 2
UUID=0000-dead                             /mnt/usb  vfat noauto,nofail     0 0
/swapfile                                  none      swap sw                0 0
tmpfs                                      /tmp      tmpfs defaults         0 0
FSTAB
printf 'ID=debian\nVERSION_ID="12"\n' > "$work/root/etc/os-release"
echo root-boot-dir > "$work/root/boot/hidden"
ln -s /boot/vmlinuz-6.1.0-13-amd64 "$work/root/vmlinuz"
echo kernel > "$work/boot/vmlinuz-6.1.0-13-amd64"
echo 'set default=0' > "$work/boot/grub/grub.cfg"
truncate -s 32M "$work/root.img"
mkfs.ext4 -q -F -U 6b8f4c64-1c1e-4f0e-9a0b-0000000a55e1 -L guestroot -d "$work/root" "$work/root.img"
truncate -s 16M "$work/boot.img"
mkfs.ext4 -q -F -U 6b8f4c64-1c1e-4f0e-9a0b-0000000b0071 -L guestboot -d "$work/boot" "$work/boot.img"
truncate -s 8M "$work/efi.img"
mkfs.vfat -i ABCD1234 -n ESP "$work/efi.img" > /dev/null
printf 'MZ loader' > "$work/BOOTX64.EFI"
mmd -i "$work/efi.img" ::/EFI ::/EFI/BOOT
mcopy -i "$work/efi.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
truncate -s 56M "$out"
place "$work/root.img" "$out" 0
place "$work/boot.img" "$out" $((32 * MiB))
place "$work/efi.img" "$out" $((48 * MiB))
