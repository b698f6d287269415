# Shared helpers for image recipes. Source it: . testdata/images/lib.sh
set -euo pipefail
export LC_ALL=C
# Reproducible filesystems: fixed timestamps and UUIDs where tools allow.
export SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000

MiB=$((1024 * 1024))

# place FILE IMAGE OFFSET_BYTES: write a filesystem image into a disk image at an offset.
place() { dd if="$1" of="$2" bs=1M seek=$(($3 / MiB)) conv=notrunc,sparse status=none; }
