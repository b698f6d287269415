#!/usr/bin/env bash
# make demo: the main job on a small sample image the repository builds
# itself (a Debian-like MBR disk with an ext4 root, from testdata/images).
set -euo pipefail
cd "$(dirname "$0")/.."
vhdprep=${1:-bin/vhdprep}
work=.cache/demo
mkdir -p "$work"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

if [ ! -f "$work/sample.raw" ]; then
  step "building the sample image (testdata/images/disk-debian-mbr.sh)"
  TMPDIR=$(mktemp -d) bash testdata/images/disk-debian-mbr.sh "$work/sample.raw.tmp"
  mv "$work/sample.raw.tmp" "$work/sample.raw"
fi

step "vhdprep info $work/sample.raw"
"$vhdprep" info "$work/sample.raw"

step "vhdprep convert --force $work/sample.raw $work/sample.vhd"
"$vhdprep" convert --force "$work/sample.raw" "$work/sample.vhd"

step "vhdprep info $work/sample.vhd"
"$vhdprep" info "$work/sample.vhd"

step "vhdprep check $work/sample.vhd"
# The sample is a stock image, not yet prepared for Azure: check says what
# is missing and exits 1.
"$vhdprep" check "$work/sample.vhd" || echo "(check exited $?: the findings above are what 'vhdprep fix' and 'vhdprep agent inject' are for)"
