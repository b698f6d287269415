# A bare 32 MiB ext4 filesystem holding /etc/hostname: the smallest real image.
# tools: mkfs.ext4
. testdata/images/lib.sh
out=$1
root=$(mktemp -d)
mkdir -p "$root/etc"
echo tiny > "$root/etc/hostname"
truncate -s 32M "$out"
mkfs.ext4 -q -F -d "$root" -U 6b8f4c64-1c1e-4f0e-9a0b-000000000001 -L tiny "$out"
