# Sourced by build-image.sh and build-matrix.sh: Debian disk images made from
# Debian's packages the ways users make them, with no loop device and nothing
# mounted in the image. One debootstrap tree per Debian release is shared by
# every image of that release; each image's tree is a copy of it with the
# image's own packages and configuration, and everything is cached in CACHE
# by what it was made from.
#
# Needs root: debootstrap, and chroot for apt-get, update-grub, grub-mkimage.
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What every image has: a kernel with the Hyper-V drivers, systemd, SSH, sudo,
# GRUB for BIOS and initramfs-tools, as debootstrap --include installs them.
base_packages=linux-image-cloud-amd64,systemd-sysv,udev,dbus,openssh-server,sudo,grub-pc,initramfs-tools,zstd,openssl,iproute2,procps
MiB=$((1024 * 1024))

log() { echo "e2e image: $*"; }

# key INPUT...: a short name for what an entry was made from.
key() { printf '%s\n' "$@" | sha256sum | cut -c1-12; }

# unmount_under DIR: nothing stays mounted under DIR (deepest first).
unmount_under() {
  awk -v p="$(realpath -m "$1")/" 'index($2 "/", p) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m"; done
}

# debootstrap, and the package scripts run in a tree, mount /proc, /sys and
# /dev inside it while they work; whatever stops the build, nothing stays
# mounted, and a tree is never removed with something mounted in it.
building=
trap '[ -z "$building" ] || unmount_under "$building"' EXIT

# sweep CACHE NAME: removes NAME's entries, called when the one made from
# today's inputs is missing: the rest were made from other inputs or are
# half-built.
sweep() {
  local old
  for old in "$1/$2"-????????????{,.partial,.raw,.raw.partial,.raw.partial.work}; do
    [ -e "$old" ] || continue
    unmount_under "$old"
    rm -rf "$old"
  done
}

# in_chroot [--host] TREE CMD...: CMD in the tree with /proc and /dev
# mounted, as package scripts expect, and the host's resolver for apt; with
# --host also the host's /sys and a /run, which dracut's host-only mode needs
# (never for GRUB's scripts, which would take a UEFI host's firmware for the
# guest's).
in_chroot() {
  local host=
  [ "$1" != --host ] || { host=1; shift; }
  local tree=$1; shift
  mount -t proc proc "$tree/proc"
  mount --bind /dev "$tree/dev"
  [ -z "$host" ] || { mount --bind /sys "$tree/sys"; mount -t tmpfs tmpfs "$tree/run"; }
  cp /etc/resolv.conf "$tree/etc/resolv.conf"
  local rc=0
  chroot "$tree" "$@" || rc=$?
  rm -f "$tree/etc/resolv.conf"
  local m
  for m in proc dev sys run; do unmount_under "$tree/$m"; done
  return $rc
}

# base_tree CACHE SUITE: sets base to SUITE's debootstrap tree, configured as
# every image has it, building it if the cache lacks it.
base_tree() {
  local cache=$1 suite=$2
  base=$cache/base-$suite-$(key "$suite" "$base_packages" "$(declare -f base_tree configure_base)")
  [ -d "$base" ] && return
  sweep "$cache" "base-$suite"
  building=$base.partial
  log "debootstrap $suite into $building"
  debootstrap --variant=minbase --include="$base_packages" "$suite" "$building" "$mirror" >"$cache/debootstrap-$suite.log" 2>&1 ||
    { tail -30 "$cache/debootstrap-$suite.log"; log "debootstrap failed; full log in $cache/debootstrap-$suite.log" >&2; return 1; }
  unmount_under "$building"
  configure_base "$building"
  mv "$building" "$base"
  building=
}

configure_base() {
  local t=$1
  echo debian >"$t/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n' >"$t/etc/hosts"
  # DHCP on every wired interface, with systemd-networkd (part of systemd).
  cat >"$t/etc/systemd/network/80-dhcp.network" <<'NET'
[Match]
Name=en* eth*

[Network]
DHCP=yes
NET
  chroot "$t" systemctl enable systemd-networkd.service systemd-networkd-wait-online.service >/dev/null 2>&1
  : >"$t/etc/machine-id"
}

# image_tree CACHE NAME SUITE PACKAGES CONFIGURE: sets tree to image NAME's
# tree, a directory whose root/ is a copy of SUITE's base tree with PACKAGES
# (space-separated) installed by apt-get, and whose boot/ and esp/, when the
# function CONFIGURE (run with the directory) makes them, hold what goes on a
# separate /boot and on the ESP. Keyed by the base tree, the packages, this
# library and the calling script.
image_tree() {
  local cache=$1 name=$2 suite=$3 packages=$4 configure=$5
  base_tree "$cache" "$suite"
  tree=$cache/tree-$name-$(key "$base" "$packages" "$(cat "${BASH_SOURCE[0]}" "$0")")
  [ -d "$tree" ] && return
  sweep "$cache" "tree-$name"
  building=$tree.partial
  log "$name: copying the $suite tree into $building"
  mkdir "$building"
  cp -a --reflink=auto "$base" "$building/root"
  if [ -n "$packages" ]; then
    log "$name: apt-get install $packages"
    in_chroot "$building/root" sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages" \
      >"$cache/apt-$name.log" 2>&1 || { tail -30 "$cache/apt-$name.log"; log "$name: apt-get failed" >&2; return 1; }
  fi
  "$configure" "$building"
  rm -rf "$building/root/var/cache/apt/archives/"*.deb "$building/root/var/lib/apt/lists/"*_Packages
  mv "$building" "$tree"
  building=
}

# update_grub TREE ROOT [BOOT]: grub.cfg as update-grub writes it on the
# installed system. In a chroot of a plain directory grub-probe cannot name
# the disk, so for this one run it answers with the facts of the disk the
# tree is going to: ROOT for /, BOOT for a separate /boot, each
# "DEVICE FS FS_UUID PARTUUID PARTMAP ABSTRACTION GRUB_DRIVE" ("-" for none),
# e.g. "/dev/sda1 ext2 UUID 7e2e2e01-01 msdos - hd0,msdos1"; and with a
# separate /boot, grub-mkrelpath names /boot's files from that filesystem's
# root, as it does where /boot is mounted.
update_grub() {
  local t=$1 root=$2 boot=${3:-$2}
  mv "$t/usr/sbin/grub-probe" "$t/usr/sbin/grub-probe.real"
  if [ $# -eq 3 ]; then
    mv "$t/usr/bin/grub-mkrelpath" "$t/usr/bin/grub-mkrelpath.real"
    printf '#!/bin/sh\ncase "$1" in /boot|/boot/*) echo "${1#/boot}" ;; *) echo "$1" ;; esac\n' >"$t/usr/bin/grub-mkrelpath"
    chmod 0755 "$t/usr/bin/grub-mkrelpath"
  fi
  cat >"$t/usr/sbin/grub-probe" <<PROBE
#!/bin/sh
for a; do
  case "\$a" in
    --target=*) target=\${a#--target=} ;;
    -*) ;;
    *) subject=\$a ;;
  esac
done
set -- $root
case "\$subject" in /boot*|${boot%% *}) set -- $boot ;; esac
case "\$target" in
  device) echo "\$1" ;;
  fs) echo "\$2" ;;
  fs_uuid) echo "\$3" ;;
  partuuid) [ "\$4" = - ] || echo "\$4" ;;
  partmap) echo "\$5" ;;
  abstraction) [ "\$6" = - ] || echo "\$6" ;;
  drive) echo "(\$7)" ;;
  compatibility_hint|bios_hints) echo "\$7" ;;
  hints_string) case "\$7" in hd*) echo "--hint-bios=\$7 --hint-efi=\$7 --hint-baremetal=ahci0,\${7#*,}" ;; *) echo "--hint=\$7" ;; esac ;;
  fs_label|cryptodisk_uuid) ;;
  *) exit 1 ;;
esac
PROBE
  chmod 0755 "$t/usr/sbin/grub-probe"
  mkdir -p "$t/boot/grub"
  chroot "$t" update-grub >"$t.update-grub.log" 2>&1 ||
    { cat "$t.update-grub.log"; log "update-grub failed" >&2; return 1; }
  rm -f "$t.update-grub.log"
  mv "$t/usr/sbin/grub-probe.real" "$t/usr/sbin/grub-probe"
  [ $# -ne 3 ] || mv "$t/usr/bin/grub-mkrelpath.real" "$t/usr/bin/grub-mkrelpath"
}

# grub_bios TREE PREFIX MODULE...: what grub-install --target=i386-pc copies
# to the boot directory, and the core image the disk's first sectors hold.
grub_bios() {
  local t=$1 prefix=$2; shift 2
  cp -a "$t/usr/lib/grub/i386-pc" "$t/boot/grub/"
  chroot "$t" grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img -p "$prefix" biosdisk "$@"
}

# write_bios_boot ROOT BOOT OUT: GRUB's boot sector (from the guest's ROOT
# tree) keeps the partition table, only its first 440 bytes are code; the
# core image (in the BOOT directory, /boot's contents) goes to the sectors
# between the MBR and the first partition.
write_bios_boot() {
  dd if="$1/usr/lib/grub/i386-pc/boot.img" of="$3" bs=440 count=1 conv=notrunc status=none
  dd if="$2/grub/i386-pc/core.img" of="$3" bs=512 seek=1 conv=notrunc status=none
}

# build_host_initramfs DIR MODULE...: the tree's initramfs-tools initramfs
# as MODULES=dep leaves it on the machine that built the image: that
# machine's disk drivers (MODULE...) and no Hyper-V driver. The machine is
# named, not read (dep mode reads /sys, which differs from one test machine
# to the next), as MODULES=list takes it. DIR is the image's directory, its
# tree in DIR/root.
build_host_initramfs() {
  local d=$1 r=$1/root
  shift
  printf 'MODULES=list\n' >"$r/etc/initramfs-tools/conf.d/90-build-host.conf"
  printf '%s\n' "$@" >>"$r/etc/initramfs-tools/modules"
  in_chroot "$r" update-initramfs -u -k all >"$d/initramfs.log" 2>&1 ||
    { tail -30 "$d/initramfs.log"; log "update-initramfs failed" >&2; return 1; }
  rm -f "$d/initramfs.log"
}

# mbr_ext4_disk ROOT OUT DISK_ID ROOT_UUID: the classic layout: a 2 GiB disk,
# an MBR, one ext4 partition holding ROOT from 1 MiB, GRUB for BIOS.
mbr_ext4_disk() {
  rm -f "$2.partial"
  truncate -s 2G "$2.partial"
  printf 'label: dos\nlabel-id: %s\nstart=1MiB, type=83, bootable\n' "$3" | sfdisk -q "$2.partial"
  mkfs_ext4 "$1" "$2.partial" $MiB $((2047 * MiB)) "$4" root
  write_bios_boot "$1" "$1/boot" "$2.partial"
  mv "$2.partial" "$2"
}

# mkfs_ext4 DIR FILE OFFSET SIZE UUID LABEL: an ext4 filesystem holding DIR,
# written at OFFSET bytes into FILE.
mkfs_ext4() {
  mkfs.ext4 -q -F -U "$5" -L "$6" -E offset="$3" -d "$1" "$2" "$(($4 / 1024))k"
}

# mkfs_xfs DIR FILE UUID LABEL: an XFS filesystem filling FILE, holding DIR
# through a protofile (mkfs.xfs -p) with DIR's owners, modes and device nodes
# (xfsprogs before 6.14 cannot populate from a directory). The protofile
# keeps no sticky bits, hard links, holes or extended attributes.
mkfs_xfs() {
  local dir=$1 out=$2 proto=$2.proto
  {
    echo /dev/null
    echo "0 0"
    echo "d--755 0 0"
    # find lists a directory before its entries; awk closes directories ($)
    # as the depth falls.
    (cd "$dir" && find . -mindepth 1 -printf '%d\t%y\t%m\t%U\t%G\t%p\t%l\t%f\n' |
      awk -F'\t' -v root="$dir" '
        function close_to(d) { while (depth > d) { print "$"; depth-- } }
        {
          close_to($1 - 1)
          mode = sprintf("%04d", $3); suid = substr(mode, 1, 1) + 0; perm = substr(mode, 2)
          u = (int(suid / 4) % 2) ? "u" : "-"; g = (int(suid / 2) % 2) ? "g" : "-"
          name = $8
          if ($2 == "d") { print name, "d" u g perm, $4, $5; depth = $1 }
          else if ($2 == "l") print name, "l" u g perm, $4, $5, $7
          else if ($2 == "f") print name, "-" u g perm, $4, $5, root substr($6, 2)
          else if ($2 == "p") print name, "p" u g perm, $4, $5
          else if ($2 == "c" || $2 == "b") {
            cmd = "stat -c \"%Hr %Lr\" \"" root substr($6, 2) "\""; cmd | getline mm; close(cmd)
            print name, $2 u g perm, $4, $5, mm
          }
        }
        END { close_to(0) }')
    echo '$'
  } >"$proto"
  mkfs.xfs -q -f -m uuid="$3" -L "$4" -p "$proto" "$out"
  rm -f "$proto"
}
