#!/usr/bin/env bash
# Builds the end-to-end test's disk image: a stock Debian 12 (bookworm) system
# made with debootstrap from Debian's packages, in a 2 GiB raw disk with an MBR,
# one ext4 root partition and GRUB for BIOS, as a Debian user would install it
# for an Azure Gen1 VM before running vhdprep on it, its initramfs holding only
# the drivers of the IDE machine it was built on (MODULES=dep).
#
#   build-image.sh CACHE_DIR OUTPUT.raw
#
# Its tree is a copy of the bookworm tree the image matrix (build-matrix.sh)
# shares; see image-lib.sh. It needs no loop device and mounts nothing in the
# image: the file system is written by mkfs.ext4 -d straight into the
# partition's place in the disk file, and GRUB's boot sector and core image,
# made by the guest's own grub-mkimage, are written to the disk's first
# sectors, which is what grub-install does on a real disk.
set -euo pipefail
. "$(dirname "$0")/image-lib.sh"

cache=${1:?usage: build-image.sh CACHE_DIR OUTPUT.raw}
out=${2:?usage: build-image.sh CACHE_DIR OUTPUT.raw}

# Fixed identities, so the cached tree and every image built from it agree.
root_uuid=5c2e9a61-0e3c-4d6b-9f4e-7b1d2c3a4e5f
disk_id=0x7e2e2e01

configure() {
  local r=$1/root
  printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$root_uuid" >"$r/etc/fstab"
  # Built on a machine with an IDE disk, as the test's VMs have: fix must
  # add the Hyper-V drivers to this very initramfs, which then boots.
  build_host_initramfs "$1" ata_piix sd_mod
  update_grub "$r" "/dev/sda1 ext2 $root_uuid ${disk_id#0x}-01 msdos - hd0,msdos1"
  grub_bios "$r" '(hd0,msdos1)/boot/grub' part_msdos ext2
}

mkdir -p "$cache"
image_tree "$cache" e2e bookworm "nftables eject" configure

log "writing $out"
mbr_ext4_disk "$tree/root" "$out" "$disk_id" "$root_uuid"
