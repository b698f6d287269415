#!/usr/bin/env bash
# make demo: the main job on a small sample image the repository builds
# itself (a stock Debian-like MBR disk with an ext4 root, from
# testdata/images): look at it, check it, see what fix would change, then
# vhdprep prepare: the whole job in one command, ending green.
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
# A copy, so that nothing the demo runs can change the cached sample.
cp --sparse=always "$work/sample.raw" "$work/disk.raw"
img=$work/disk.raw

step "vhdprep inspect $img"
"$vhdprep" inspect "$img"

step "vhdprep check $img"
# A stock image, not yet prepared for Azure: check says what is missing and exits 1.
"$vhdprep" check "$img" || echo "(check exited $?)"

step "vhdprep fix $img --dry-run"
"$vhdprep" fix "$img" --dry-run

step "vhdprep prepare $img $work/disk.vhd --config scripts/demo.vhdprep.yaml --force"
# prepare: convert, check, inject the agent, fix, deprovision, and check again
# as the gate; disk.vhd appears only if the gate passes. The sample cannot
# have offline what a real build gives an image; the config says so, a line
# a rule:
grep -E '^ +[A-Z]{3}[0-9]{3}:|^remove-users' scripts/demo.vhdprep.yaml
"$vhdprep" prepare "$img" "$work/disk.vhd" --config scripts/demo.vhdprep.yaml --force

step "vhdprep info $work/disk.vhd"
"$vhdprep" info "$work/disk.vhd"
