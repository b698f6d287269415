# Every layering the kernel unpacks, in one file: stored newc, stored crc
# (070702), then gzip, xz, lzma, zstd, bzip2 and lz4 -l segments, with zero
# padding of odd lengths between some of them. Segment N holds seg/N.txt
# ("segment N") and module mN.ko; hv_vmbus, hv_storvsc and hv_netvsc are
# spread over the gzip, xz and lz4 segments.
# tools: cpio gzip xz zstd bzip2 lz4
. testdata/images/lib.sh
. testdata/images/initrd-lib.sh
out=$1 t=$(mktemp -d)
seg() {
  local d=$t/$1 m
  mkdir -p "$d/seg" "$d/lib/modules/6.1.0/kernel"
  printf 'segment %s\n' "$1" > "$d/seg/$1.txt"
  for m in "m$1" "${@:2}"; do printf '\177ELF %s' "$m" > "$d/lib/modules/6.1.0/kernel/$m.ko"; done
  initrd_cpio "$d" "${FORMAT:-newc}"
}
{
  seg 0
  FORMAT=crc seg 1
  seg 2 hv_vmbus | gzip -n
  initrd_zeros 3
  seg 3 hv_storvsc | xz --check=crc32
  initrd_zeros 5
  seg 4 | xz --format=lzma
  seg 5 | zstd -q
  initrd_zeros 512
  seg 6 | bzip2
  initrd_zeros 1
  seg 7 hv_netvsc | lz4 -l -q
} > "$out"
