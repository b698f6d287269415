# Sourced by the initrd-* recipes (and any recipe that needs an initramfs):
# builds initramfs files the way dracut, initramfs-tools and mkinitcpio do,
# with the real cpio and compressors.

# initrd_tree DIR KVER MODDIR SUFFIX MODULE...: a small initramfs root with
# /init, a symlink, MODDIR/KVER/kernel/drivers/hv/MODULE.ko$SUFFIX for each
# MODULE (compressed with the tool SUFFIX names), modules.dep and
# modules.builtin (which lists ext4 and crc32c_generic).
initrd_tree() {
  local d=$1 kver=$2 moddir=$3 suffix=$4 m f
  shift 4
  mkdir -p "$d"/{bin,etc,dev,proc,sys,"$moddir/$kver/kernel/drivers/hv","$moddir/$kver/kernel/fs/xfs"}
  printf '#!/bin/sh\nexec /sbin/init "$@"\n' > "$d/init"; chmod 755 "$d/init"
  printf '#!/bin/sh\n' > "$d/bin/sh"; chmod 755 "$d/bin/sh"
  ln -s sh "$d/bin/ash"
  echo initramfs > "$d/etc/hostname"
  for m in "$@" xfs; do
    f=$d/$moddir/$kver/kernel/drivers/hv/$m.ko
    [ "$m" = xfs ] && f=$d/$moddir/$kver/kernel/fs/xfs/$m.ko
    { printf '\177ELF'; head -c 3000 /dev/zero | tr '\0' "$m"; } > "$f"
    case $suffix in
      .xz) xz --check=crc32 "$f" ;;
      .zst) zstd -q --rm "$f" ;;
      .gz) gzip -n "$f" ;;
    esac
  done
  for m in "$@"; do echo "kernel/drivers/hv/$m.ko$suffix:"; done > "$d/$moddir/$kver/modules.dep"
  printf 'kernel/fs/ext4/ext4.ko\nkernel/crypto/crc32c_generic.ko\n' > "$d/$moddir/$kver/modules.builtin"
}

# initrd_ucode DIR: dracut's and initramfs-tools' early-microcode tree.
initrd_ucode() {
  mkdir -p "$1/kernel/x86/microcode"
  printf 'microcode' > "$1/kernel/x86/microcode/GenuineIntel.bin"
  : > "$1/early_cpio"
}

# initrd_cpio DIR [FORMAT]: the tree as a cpio archive on stdout, newc by
# default (crc for the checksummed variant), sorted, owned by root.
initrd_cpio() {
  (cd "$1" && find . | sort | cpio -o -H "${2:-newc}" -R 0:0 --reproducible --quiet)
}

# initrd_zeros N: N zero bytes on stdout (padding between segments).
initrd_zeros() { head -c "$1" /dev/zero; }
