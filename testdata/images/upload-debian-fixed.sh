# The Debian-like disk as a fixed VHD written by qemu-img (an independent
# writer: creator "qem2", holes kept), for upload round trips.
# tools: sfdisk mkfs.ext4 qemu-img
. testdata/images/lib.sh
raw=$(mktemp)
bash testdata/images/disk-debian-mbr.sh "$raw"
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$raw" "$1"
rm -f "$raw"
