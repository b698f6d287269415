#!/usr/bin/env bash
# make docker: build the Dockerfile's image where a container engine runs
# (docker or podman), then run prepare in it on the demo sample, as a CI
# pipeline would (docker run -v "$PWD:/work" vhdprep prepare ...). Where none
# runs, say so and succeed: the image is optional, the binary is the product.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cache-dir.sh
version=${1:-dev} commit=${2:-}

engine=
for e in docker podman; do
  if command -v "$e" >/dev/null && "$e" info >/dev/null 2>&1; then engine=$e; break; fi
done
if [ -z "$engine" ]; then
  echo "make docker: no container engine runs here ('docker info' and 'podman info' fail); the image is not built"
  exit 0
fi

tag=vhdprep:$version
"$engine" build --build-arg VERSION="$version" --build-arg COMMIT="$commit" -t "$tag" .
"$engine" run --rm "$tag" version

work=$(cache_dir demo)
if [ ! -f "$work/sample.raw" ]; then
  TMPDIR=$(mktemp -d) bash testdata/images/disk-debian-mbr.sh "$work/sample.raw.tmp"
  mv "$work/sample.raw.tmp" "$work/sample.raw"
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cp scripts/demo.vhdprep.yaml "$out/"
cp --sparse=always "$work/sample.raw" "$out/sample.raw"
"$engine" run --rm -v "$out:/work" "$tag" prepare sample.raw sample.vhd --config demo.vhdprep.yaml
test -s "$out/sample.vhd"
echo "make docker: $tag prepared the demo sample"
