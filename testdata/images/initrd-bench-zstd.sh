# A large Debian-like initramfs for the Modules benchmark: about 40 MB of
# zstd over 150 MB of cpio (random and text files), with the hv modules.
# tools: cpio zstd
. testdata/images/lib.sh
. testdata/images/initrd-lib.sh
out=$1 t=$(mktemp -d)
initrd_ucode "$t/early"
initrd_tree "$t/main" 6.1.0-13-cloud-amd64 lib/modules "" hv_vmbus hv_storvsc hv_netvsc
mkdir -p "$t/main/usr/lib/firmware" "$t/main/usr/share/doc"
for i in $(seq 1 36); do head -c $MiB /dev/urandom > "$t/main/usr/lib/firmware/blob$i.bin"; done
for i in $(seq 1 110); do seq "$((i * 100000))" "$((i * 100000 + 140000))" > "$t/main/usr/share/doc/text$i.txt"; done
{ initrd_cpio "$t/early"; initrd_cpio "$t/main" | zstd -q -T0 -3; } > "$out"
