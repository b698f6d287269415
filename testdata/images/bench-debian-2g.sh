# For benchmarks: a 2 GiB MBR disk whose ext4 root holds a real userland,
# copied from this (Debian) machine's /usr/bin, /usr/sbin, /usr/lib and
# /usr/share/doc: about 1 GiB in over 10,000 files.
# tools: sfdisk mkfs.ext4
. testdata/images/lib.sh
. testdata/images/rootfs-debian.sh
out=$1
work=$(mktemp -d)
debian_tree "$work/root"
mkdir -p "$work/root/usr/lib" "$work/root/usr/share"
cp -a /usr/bin/. "$work/root/usr/bin/"
cp -a /usr/sbin/. "$work/root/usr/sbin/"
cp -a /usr/lib/x86_64-linux-gnu "$work/root/usr/lib/"
cp -a /usr/share/doc "$work/root/usr/share/"
truncate -s 2G "$out"
printf 'label: dos\n1MiB,,L,*\n' | sfdisk -q "$out"
truncate -s 2047M "$work/fs"
mkfs.ext4 -q -F -d "$work/root" -U 6b8f4c64-1c1e-4f0e-9a0b-00000000d12a "$work/fs"
place "$work/fs" "$out" $MiB
rm -rf "$work"
