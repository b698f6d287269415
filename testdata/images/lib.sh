# Shared helpers for image recipes. Source it: . testdata/images/lib.sh
set -euo pipefail
export LC_ALL=C
# Reproducible filesystems: fixed timestamps and UUIDs where tools allow.
export SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000

MiB=$((1024 * 1024))

# place FILE IMAGE OFFSET_BYTES: write a filesystem image into a disk image at an offset.
place() { dd if="$1" of="$2" bs=1M seek=$(($3 / MiB)) conv=notrunc,sparse status=none; }

# xfs_proto DIR: a mkfs.xfs protofile (mkfs.xfs -p) that copies the tree DIR,
# since mkfs.xfs cannot populate from a directory the way mkfs.ext4 -d does.
xfs_proto() {
  echo /dev/null
  echo "0 0"
  echo "d--755 0 0"
  _xfs_proto_walk "$1"
  echo '$'
}
_xfs_proto_walk() {
  local e name
  for e in "$1"/* "$1"/.[!.]*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    name=${e##*/}
    if [ -L "$e" ]; then
      echo "$name l--777 0 0 $(readlink "$e")"
    elif [ -d "$e" ]; then
      echo "$name d--$(stat -c %a "$e") 0 0"
      _xfs_proto_walk "$e"
      echo '$'
    else
      echo "$name ---$(stat -c %a "$e") 0 0 $e"
    fi
  done
}

# mkfs.xfs refuses filesystems under 300 MiB outside its test suite; these
# variables are how xfstests makes small ones, which keeps test images small.
export TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1
