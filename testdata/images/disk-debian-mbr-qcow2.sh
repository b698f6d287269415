# The Debian-like disk as a compressed qcow2 (v3, zstd).
# tools: sfdisk mkfs.ext4 qemu-img
. testdata/images/lib.sh
raw=$(mktemp)
bash testdata/images/disk-debian-mbr.sh "$raw"
qemu-img convert -q -f raw -O qcow2 -c -o compression_type=zstd "$raw" "$1"
rm -f "$raw"
