#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine that has only Go:
# the real tools tests build images with and check results against, and
# Azurite (Azure Storage's emulator) for the upload tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cache-dir.sh

# Debian packages, by the program each one provides.
declare -A pkg_of=(
  [qemu-img]=qemu-utils [mkfs.ext4]=e2fsprogs [debugfs]=e2fsprogs [mkfs.xfs]=xfsprogs
  [sfdisk]=fdisk [cpio]=cpio [zstd]=zstd [xz]=xz-utils [lz4]=lz4 [bzip2]=bzip2
  [gzip]=gzip [mcopy]=mtools [mkfs.vfat]=dosfstools [genisoimage]=genisoimage
  [mkudffs]=udftools [openssl]=openssl [socat]=socat [node]=nodejs [npm]=npm
  [blkid]=util-linux [mkswap]=util-linux [findmnt]=util-linux [pvck]=lvm2 [patch]=patch [e2undo]=e2fsprogs
  [mkfs.btrfs]=btrfs-progs [cryptsetup]=cryptsetup-bin [lvm]=lvm2 [sgdisk]=gdisk
  [systemd-analyze]=systemd [systemctl]=systemd [dpkg-deb]=dpkg [apt-get]=apt
  [rpm]=rpm [rpmbuild]=rpm [lsinitramfs]=initramfs-tools-core [strace]=strace [prlimit]=util-linux [flock]=util-linux
  [depmod]=kmod [modprobe]=kmod
  [nft]=nftables [iptables]=iptables [iptables-restore]=iptables [ip]=iproute2 [unshare]=util-linux [nsenter]=util-linux
)
# The end-to-end tests (make e2e) build Debian images and boot them, Gen2
# ones with Debian's UEFI firmware.
if [ "${E2E:-}" = 1 ]; then
  pkg_of+=([debootstrap]=debootstrap [qemu-system-x86_64]=qemu-system-x86)
fi
missing=()
for prog in "${!pkg_of[@]}"; do
  command -v "$prog" >/dev/null 2>&1 || missing+=("${pkg_of[$prog]}")
done
# The benchmarks (make bench) take each command's CPU time and peak memory
# from GNU time (its own child's rusage), and run AzCopy (installed below),
# whose binary links libsecret.
if [ "${BENCH:-}" = 1 ]; then
  [ -x /usr/bin/time ] || missing+=(time)
  compgen -G '/usr/lib/*/libsecret-1.so.0' >/dev/null || missing+=(libsecret-1-0)
fi
if [ "${E2E:-}" = 1 ] && [ ! -e /usr/share/ovmf/OVMF.fd ]; then
  missing+=(ovmf)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing Debian packages: $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

# Azurite, pinned: 3.35.0 is the newest release that runs on Debian 12's Node.js 20.
azurite_version=3.35.0
azurite_dir=$(cache_dir azurite)
if [ ! -x "$azurite_dir/node_modules/.bin/azurite-blob" ] || \
   ! grep -q "\"version\": \"$azurite_version\"" "$azurite_dir/node_modules/azurite/package.json" 2>/dev/null; then
  echo "installing azurite@$azurite_version into $azurite_dir"
  mkdir -p "$azurite_dir"
  npm install --silent --no-audit --no-fund --prefix "$azurite_dir" "azurite@$azurite_version" >/dev/null
fi

# AzCopy, pinned, for the benchmarks only (BENCH=1): the npm package of
# Microsoft's own linux/amd64 build, which ships it without the execute bit.
if [ "${BENCH:-}" = 1 ]; then
  azcopy_version=10.32.2
  azcopy_dir=$(cache_dir azcopy)
  azcopy_pkg=$azcopy_dir/node_modules/@azure-tools/azcopy-linux
  if ! grep -q "\"version\": \"$azcopy_version\"" "$azcopy_pkg/package.json" 2>/dev/null; then
    echo "installing @azure-tools/azcopy-linux@$azcopy_version into $azcopy_dir"
    npm install --silent --no-audit --no-fund --prefix "$azcopy_dir" "@azure-tools/azcopy-linux@$azcopy_version" >/dev/null
  fi
  chmod +x "$azcopy_pkg/dist/bin/azcopy_linux_amd64"
fi
