# An Arch mkinitcpio initramfs compressed with lz4 -l (the kernel's legacy
# lz4 format), modules .ko.zst, followed by zero padding.
# tools: cpio lz4 zstd
. testdata/images/lib.sh
. testdata/images/initrd-lib.sh
out=$1 t=$(mktemp -d)
initrd_tree "$t/main" 6.6.1-arch1-1 usr/lib/modules .zst hv_vmbus hv_storvsc hv_netvsc
{ initrd_cpio "$t/main" | lz4 -l -q -9; initrd_zeros 4096; } > "$out"
