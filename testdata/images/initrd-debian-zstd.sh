# A Debian initramfs-tools initramfs: an uncompressed early-microcode
# archive, then the main archive in zstd; plain .ko modules in lib/modules.
# tools: cpio zstd
. testdata/images/lib.sh
. testdata/images/initrd-lib.sh
out=$1 t=$(mktemp -d)
initrd_ucode "$t/early"
initrd_tree "$t/main" 6.1.0-13-cloud-amd64 lib/modules "" hv_vmbus hv_storvsc hv_netvsc
{ initrd_cpio "$t/early"; initrd_cpio "$t/main" | zstd -q -19; } > "$out"
