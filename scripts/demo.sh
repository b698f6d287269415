#!/usr/bin/env bash
# make demo: the main job on a small sample image the repository builds
# itself (a stock Debian-like MBR disk with an ext4 root, from
# testdata/images): check it, fix it, inject the guest agent, generalize
# it, convert it, check it again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cache-dir.sh
vhdprep=${1:-bin/vhdprep}
work=$(cache_dir demo)

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

if [ ! -f "$work/sample.raw" ]; then
  step "building the sample image (testdata/images/disk-debian-mbr.sh)"
  TMPDIR=$(mktemp -d) bash testdata/images/disk-debian-mbr.sh "$work/sample.raw.tmp"
  mv "$work/sample.raw.tmp" "$work/sample.raw"
fi
# Every run starts from the stock sample: fix changes the image it is given.
cp --sparse=always "$work/sample.raw" "$work/disk.raw"
img=$work/disk.raw

step "vhdprep inspect $img"
"$vhdprep" inspect "$img"

step "vhdprep check $img"
# A stock image, not yet prepared for Azure: check says what is missing and exits 1.
"$vhdprep" check "$img" || echo "(check exited $?)"

step "vhdprep fix $img --dry-run"
"$vhdprep" fix "$img" --dry-run

step "vhdprep fix $img"
"$vhdprep" fix "$img"

step "vhdprep agent inject $img"
"$vhdprep" agent inject "$img"

step "vhdprep deprovision $img --remove-users"
"$vhdprep" deprovision "$img" --remove-users

step "vhdprep convert --force $img $work/disk.vhd"
"$vhdprep" convert --force "$img" "$work/disk.vhd"

step "vhdprep info $work/disk.vhd"
"$vhdprep" info "$work/disk.vhd"

step "vhdprep check $work/disk.vhd"
# What is left, the sample cannot be given offline (an SSH server, an initramfs
# with Hyper-V drivers), is for the image's build to add.
"$vhdprep" check "$work/disk.vhd" || echo "(check exited $?)"
