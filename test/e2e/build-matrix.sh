#!/usr/bin/env bash
# The image matrix of matrix_test.go: Debian images made from Debian's
# packages the ways users make them, each cached by what it is made from
# (see image-lib.sh). Combined, they cover what the gate must get right on
# real images:
#
#   lvm-bios       bookworm; MBR: ext4 /boot, a swap partition, LVM (ext4 root
#                  LV, swap LV); both swaps in fstab; GRUB for BIOS (Gen1);
#                  /etc/default/grub without a GRUB_CMDLINE_LINUX line
#   xfs-uefi       trixie; GPT: ESP and XFS root; GRUB for UEFI only (Gen2)
#   trixie-agents  trixie; MBR, ext4 root, GRUB for BIOS; dracut in host-only
#                  mode; WALinuxAgent and cloud-init from Debian
#   bookworm-dep   bookworm; MBR, ext4 root, GRUB for BIOS; initramfs-tools
#                  with only a KVM build host's virtio drivers (MODULES=dep's
#                  result there)
#
#   build-matrix.sh CACHE_DIR NAME            prints image=PATH and root=TREE
#   build-matrix.sh CACHE_DIR NAME ROOT OUT   NAME's disk with ROOT as its root
#
# The second form is how a fixed copy of the root tree (fix --root, for a root
# vhdprep cannot write) goes back into a disk.
set -euo pipefail
. "$(dirname "$0")/image-lib.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)

usage="usage: build-matrix.sh CACHE_DIR NAME [ROOT OUT]"
cache=${1:?$usage}
name=${2:?$usage}

# Fixed identities, so cached trees and the disks made from them agree.
case $name in
  lvm-bios)
    suite=bookworm packages=lvm2
    disk_id=0x1f2e3d01
    boot_uuid=1f2e3d01-0000-4000-8000-00000000b007
    root_uuid=1f2e3d01-0000-4000-8000-0000000000f1
    swap_uuid=1f2e3d01-0000-4000-8000-00000000005a
    swaplv_uuid=1f2e3d01-0000-4000-8000-0000000005a2
    ;;
  xfs-uefi)
    suite=trixie packages="grub-efi-amd64 xfsprogs"
    disk_guid=1F2E3D02-0000-4000-8000-0000000D15C0
    esp_partuuid=1F2E3D02-0000-4000-8000-0000000000E1
    root_partuuid=1F2E3D02-0000-4000-8000-0000000000F1
    root_uuid=1f2e3d02-0000-4000-8000-0000000000f1
    esp_id=1F2E-3D02
    ;;
  trixie-agents)
    suite=trixie packages="dracut waagent cloud-init"
    disk_id=0x1f2e3d03
    root_uuid=1f2e3d03-0000-4000-8000-0000000000f1
    ;;
  bookworm-dep)
    suite=bookworm packages=
    disk_id=0x1f2e3d04
    root_uuid=1f2e3d04-0000-4000-8000-0000000000f1
    ;;
  *) echo "$usage: NAME is lvm-bios, xfs-uefi, trixie-agents or bookworm-dep" >&2; exit 2 ;;
esac

configure_lvm-bios() {
  local r=$1/root
  # As Debian's installer writes it for LVM: the root LV by its mapper name.
  cat >"$r/etc/fstab" <<FSTAB
/dev/mapper/vg0-root / ext4 errors=remount-ro 0 1
UUID=$boot_uuid /boot ext4 defaults 0 2
UUID=$swap_uuid none swap sw 0 0
/dev/mapper/vg0-swap none swap sw 0 0
FSTAB
  # As image builders leave it: only GRUB_CMDLINE_LINUX_DEFAULT.
  sed -i '/^GRUB_CMDLINE_LINUX=/d' "$r/etc/default/grub"
  update_grub "$r" "/dev/mapper/vg0-root ext2 $root_uuid - msdos lvm lvm/vg0-root" \
    "/dev/sda1 ext2 $boot_uuid ${disk_id#0x}-01 msdos - hd0,msdos1"
  grub_bios "$r" '(hd0,msdos1)/grub' part_msdos ext2
  mkdir "$1/boot"
  mv "$r/boot/"* "$1/boot/"
}

disk_lvm-bios() {
  local t=$1 root=$2 out=$3 work=$3.work
  mkdir -p "$work"
  truncate -s 2G "$out"
  printf 'label: dos\nlabel-id: %s\nstart=1MiB, size=255MiB, type=83, bootable\nsize=128MiB, type=82\ntype=8e\n' "$disk_id" |
    sfdisk -q "$out"
  mkfs_ext4 "$t/boot" "$out" $MiB $((255 * MiB)) "$boot_uuid" boot
  truncate -s 128M "$work/swap"
  mkswap -q -U "$swap_uuid" "$work/swap"
  dd if="$work/swap" of="$out" bs=1M seek=256 conv=notrunc,sparse status=none
  # The LVM partition: PV label and metadata written by the project's
  # generator (LVM's own tools need a block device), the root and swap LVs'
  # contents made first.
  truncate -s 1400M "$work/root"
  mkfs_ext4 "$root" "$work/root" 0 $((1400 * MiB)) "$root_uuid" root
  truncate -s 64M "$work/swaplv"
  mkswap -q -U "$swaplv_uuid" "$work/swaplv"
  (cd "$repo" && go run ./testdata/images/lvmgen -out "$work/pv" -size 1664M -vg vg0 -id-seed matrix-lvm-bios \
    -lv root="$work/root" -lv swap="$work/swaplv")
  dd if="$work/pv" of="$out" bs=1M seek=384 conv=notrunc,sparse status=none
  write_bios_boot "$root" "$t/boot" "$out"
  rm -rf "$work"
}

configure_xfs-uefi() {
  local r=$1/root
  printf 'UUID=%s / xfs defaults 0 1\nUUID=%s /boot/efi vfat umask=0077 0 1\n' "$root_uuid" "$esp_id" >"$r/etc/fstab"
  mkdir -p "$r/boot/efi"
  update_grub "$r" "/dev/sda2 xfs $root_uuid ${root_partuuid,,} gpt - hd0,gpt2"
  # What grub-install --target=x86_64-efi puts in /boot and on the ESP, and
  # the fallback path firmware boots without a boot entry in NVRAM.
  cp -a "$r/usr/lib/grub/x86_64-efi" "$r/boot/grub/"
  chroot "$r" grub-mkimage -O x86_64-efi -o /boot/grub/x86_64-efi/core.efi -p '(hd0,gpt2)/boot/grub' part_gpt xfs
  mkdir -p "$1/esp/EFI/BOOT" "$1/esp/EFI/debian"
  cp "$r/boot/grub/x86_64-efi/core.efi" "$1/esp/EFI/debian/grubx64.efi"
  cp "$r/boot/grub/x86_64-efi/core.efi" "$1/esp/EFI/BOOT/BOOTX64.EFI"
}

disk_xfs-uefi() {
  local t=$1 root=$2 out=$3 work=$3.work
  mkdir -p "$work"
  truncate -s 2G "$out"
  sfdisk -q "$out" <<SFDISK
label: gpt
label-id: $disk_guid
start=1MiB, size=63MiB, type=U, uuid=$esp_partuuid
size=1983MiB, type=L, uuid=$root_partuuid
SFDISK
  truncate -s 63M "$work/esp"
  mkfs.vfat -F 16 -n ESP -i "${esp_id/-/}" "$work/esp" >/dev/null
  mcopy -s -i "$work/esp" "$t/esp/EFI" ::/
  dd if="$work/esp" of="$out" bs=1M seek=1 conv=notrunc status=none
  truncate -s 1983M "$work/root"
  mkfs_xfs "$root" "$work/root" "$root_uuid" root
  dd if="$work/root" of="$out" bs=1M seek=64 conv=notrunc,sparse status=none
  rm -rf "$work"
}

configure_trixie-agents() {
  local r=$1/root
  printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$root_uuid" >"$r/etc/fstab"
  # The initramfs only for the machine it is built on, as dracut makes it in
  # host-only mode: that machine's disk drivers and nothing else. The build
  # host is named, not read (host-only mode reads /proc/modules and /sys,
  # which differ from one test machine to the next): a KVM guest with virtio
  # disks, as most image builders run.
  printf 'hostonly="yes"\ndrivers+=" virtio_pci virtio_blk virtio_scsi "\n' >"$r/etc/dracut.conf.d/90-hostonly.conf"
  in_chroot --host "$r" dracut --force --regenerate-all >"$1/dracut.log" 2>&1 ||
    { tail -30 "$1/dracut.log"; log "dracut failed" >&2; return 1; }
  rm -f "$1/dracut.log"
  update_grub "$r" "/dev/sda1 ext2 $root_uuid ${disk_id#0x}-01 msdos - hd0,msdos1"
  grub_bios "$r" '(hd0,msdos1)/boot/grub' part_msdos ext2
}

disk_trixie-agents() {
  mbr_ext4_disk "$2" "$3" "$disk_id" "$root_uuid"
}

configure_bookworm-dep() {
  local r=$1/root
  printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$root_uuid" >"$r/etc/fstab"
  # Built on a KVM guest with a virtio disk, as most image builders run.
  build_host_initramfs "$1" virtio_pci virtio_blk
  update_grub "$r" "/dev/sda1 ext2 $root_uuid ${disk_id#0x}-01 msdos - hd0,msdos1"
  grub_bios "$r" '(hd0,msdos1)/boot/grub' part_msdos ext2
}

disk_bookworm-dep() {
  mbr_ext4_disk "$2" "$3" "$disk_id" "$root_uuid"
}

mkdir -p "$cache"
image_tree "$cache" "$name" "$suite" "$packages" "configure_$name"

if [ $# -ge 4 ]; then
  log "$name: writing $4 with the root tree $3"
  rm -rf "$4" "$4.work"
  "disk_$name" "$tree" "$3" "$4"
  exit
fi

image=$cache/image-$name-$(key "$tree" "$(cat "$(dirname "$0")/image-lib.sh" "$0")").raw
if [ ! -e "$image" ]; then
  sweep "$cache" "image-$name"
  log "$name: writing $image"
  rm -rf "$image.partial" "$image.partial.work"
  "disk_$name" "$tree" "$tree/root" "$image.partial"
  mv "$image.partial" "$image"
fi
echo "image=$image"
echo "root=$tree/root"
