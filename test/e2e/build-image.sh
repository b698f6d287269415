#!/usr/bin/env bash
# Builds the end-to-end test's disk image: a stock Debian 12 (bookworm) system
# made with debootstrap from Debian's packages, in a 2 GiB raw disk with an MBR,
# one ext4 root partition and GRUB for BIOS, as a Debian user would install it
# for an Azure Gen1 VM before running vhdprep on it.
#
#   build-image.sh CACHE_DIR OUTPUT.raw
#
# Needs root for debootstrap (chroot, device nodes). It needs no loop device and
# mounts nothing: the file system is written by mkfs.ext4 -d straight into the
# partition's place in the disk file, and GRUB's boot sector and core image,
# made by the guest's own grub-mkimage, are written to the disk's first sectors,
# which is what grub-install does on a real disk.
set -euo pipefail

cache=${1:?usage: build-image.sh CACHE_DIR OUTPUT.raw}
out=${2:?usage: build-image.sh CACHE_DIR OUTPUT.raw}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
packages=linux-image-cloud-amd64,systemd-sysv,udev,dbus,openssh-server,sudo,grub-pc,initramfs-tools,zstd,openssl,iproute2,procps

# Fixed identities, so the cached tree and every image built from it agree.
root_uuid=5c2e9a61-0e3c-4d6b-9f4e-7b1d2c3a4e5f
disk_id=0x7e2e2e01
part_start_mib=1

# The debootstrap result is cached by what it was made from.
key=$(printf '%s\n' "$suite" "$packages" "$root_uuid" "$(sha256sum "$0")" | sha256sum | cut -c1-12)
tree=$cache/rootfs-$key
mkdir -p "$cache"

# debootstrap mounts /proc and /sys (and, in a container, binds device
# nodes) inside the tree while it works; whatever stops it, nothing stays
# mounted, and a tree is never removed with something mounted in it.
unmount_under() {
  awk -v p="$(realpath -m "$1")/" 'index($2 "/", p) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m"; done
}
trap 'unmount_under "$tree.partial"' EXIT

build_tree() {
  local work=$tree.partial
  echo "e2e image: debootstrap $suite into $work"
  debootstrap --variant=minbase --include="$packages" "$suite" "$work" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -30 "$cache/debootstrap.log"; echo "e2e image: debootstrap failed; full log in $cache/debootstrap.log" >&2; return 1; }

  echo debian >"$work/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n' >"$work/etc/hosts"
  printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$root_uuid" >"$work/etc/fstab"
  # DHCP on every wired interface, with systemd-networkd (part of systemd).
  cat >"$work/etc/systemd/network/80-dhcp.network" <<'NET'
[Match]
Name=en* eth*

[Network]
DHCP=yes
NET
  chroot "$work" systemctl enable systemd-networkd.service systemd-networkd-wait-online.service >/dev/null 2>&1
  : >"$work/etc/machine-id"

  # grub.cfg as update-grub writes it on the installed system. In a chroot of a
  # plain directory grub-probe cannot name the disk, so for this one run it is
  # answered with the facts of the disk the tree is going to.
  mv "$work/usr/sbin/grub-probe" "$work/usr/sbin/grub-probe.real"
  cat >"$work/usr/sbin/grub-probe" <<PROBE
#!/bin/sh
for a; do case "\$a" in --target=*) target=\${a#--target=};; esac; done
case "\$target" in
  device) echo /dev/sda1 ;;
  fs) echo ext2 ;;
  fs_uuid) echo $root_uuid ;;
  partuuid) echo ${disk_id#0x}-01 ;;
  partmap) echo msdos ;;
  abstraction|fs_label|cryptodisk_uuid) ;;
  drive) echo '(hd0,msdos1)' ;;
  compatibility_hint|bios_hints) echo hd0,msdos1 ;;
  hints_string) echo '--hint-bios=hd0,msdos1 --hint-efi=hd0,msdos1 --hint-baremetal=ahci0,msdos1' ;;
  *) exit 1 ;;
esac
PROBE
  chmod 0755 "$work/usr/sbin/grub-probe"
  mkdir -p "$work/boot/grub"
  chroot "$work" update-grub >"$cache/update-grub.log" 2>&1 ||
    { cat "$cache/update-grub.log"; echo "e2e image: update-grub failed" >&2; return 1; }
  mv "$work/usr/sbin/grub-probe.real" "$work/usr/sbin/grub-probe"
  # What grub-install copies to the boot directory.
  cp -a "$work/usr/lib/grub/i386-pc" "$work/boot/grub/"
  chroot "$work" grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img \
    -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2

  rm -rf "$work/var/cache/apt/archives/"*.deb "$work/var/lib/apt/lists/"*_Packages
  mv "$work" "$tree"
}

if [ ! -d "$tree" ]; then
  # Trees made from other inputs are of no more use, nor is a half-built one.
  for old in "$cache"/rootfs-*; do
    [ -e "$old" ] || continue
    unmount_under "$old"
    rm -rf "$old"
  done
  build_tree
fi

echo "e2e image: writing $out"
rm -f "$out.partial"
truncate -s 2G "$out.partial"
printf 'label: dos\nlabel-id: %s\nstart=%dMiB, type=83, bootable\n' "$disk_id" "$part_start_mib" |
  sfdisk -q "$out.partial"
part_bytes=$(( (2048 - part_start_mib) * 1024 * 1024 ))
mkfs.ext4 -q -F -U "$root_uuid" -L root -E offset=$((part_start_mib * 1024 * 1024)) \
  -d "$tree" "$out.partial" "$((part_bytes / 1024))k"
# GRUB's boot sector keeps the partition table (only its first 440 bytes are
# code); its core image goes to the sectors between the MBR and the partition.
dd if="$tree/usr/lib/grub/i386-pc/boot.img" of="$out.partial" bs=440 count=1 conv=notrunc status=none
dd if="$tree/boot/grub/i386-pc/core.img" of="$out.partial" bs=512 seek=1 conv=notrunc status=none
mv "$out.partial" "$out"
