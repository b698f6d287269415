# A RHEL-like dracut initramfs: an uncompressed early-microcode archive, then
# the main archive in xz (as dracut runs it: --check=crc32), modules .ko.xz
# under usr/lib/modules with hv_vmbus, hv_storvsc and hv_netvsc.
# tools: cpio xz
. testdata/images/lib.sh
. testdata/images/initrd-lib.sh
out=$1 t=$(mktemp -d)
initrd_ucode "$t/early"
initrd_tree "$t/main" 5.14.0-362.el9.x86_64 usr/lib/modules .xz hv_vmbus hv_storvsc hv_netvsc
ln -s usr/lib "$t/main/lib"
{ initrd_cpio "$t/early"; initrd_cpio "$t/main" | xz --check=crc32 --lzma2=dict=1MiB; } > "$out"
