# A gzip initramfs (.ko.gz modules) without hv_storvsc: it would not find
# the root disk on Hyper-V.
# tools: cpio gzip
. testdata/images/lib.sh
. testdata/images/initrd-lib.sh
out=$1 t=$(mktemp -d)
initrd_tree "$t/main" 6.1.0-13-amd64 lib/modules .gz hv_vmbus hv_netvsc
initrd_cpio "$t/main" | gzip -n -9 > "$out"
