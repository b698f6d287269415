# The Debian-like disk as a dynamic VHD, written by qemu-img.
# tools: sfdisk mkfs.ext4 qemu-img
. testdata/images/lib.sh
raw=$(mktemp)
bash testdata/images/disk-debian-mbr.sh "$raw"
qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on "$raw" "$1"
rm -f "$raw"
