# A bare XFS made by today's mkfs.xfs defaults (v5: crc, ftype, reflink,
# bigtime, inobtcount, finobt, sparse inodes), populated from the rootfs-fs
# tree through a protofile (which keeps no holes, so no sparse files), with
# owners set in the protofile and /tmp's sticky bit by xfs_db.
# tools: mkfs.xfs xfs_db xfs_repair go
. testdata/images/lib.sh
. testdata/images/rootfs-fs-lib.sh
out=$1
uuid=6b8f4c64-1c1e-4f0e-9a0b-0000000f5e05
root=$(mktemp -d)
rootfs_fs_tree "$root" nosparse
xfs_proto "$root" | sed -e 's/^shadow ---[0-7]* 0 0 /shadow ---640 0 42 /' \
  -e 's/^big ---[0-7]* 0 0 /big -u-755 1000 1001 /' > "$root.proto"
truncate -s 64M "$out"
mkfs.xfs -q -f -m uuid=$uuid -L rfs-xfs -p "$root.proto" "$out"
xfs_db -x -c "path /tmp" -c "write core.mode 041777" "$out" > /dev/null
# The protofile's remote symlink needs the header mkfs.xfs 6.1 leaves out.
ino=$(xfs_db -r -c "path /slowlink" -c "print v3.inumber" "$out" | awk '{print $3}')
fsb=$(xfs_db -r -c "path /slowlink" -c "bmap" "$out" | sed -n 's/.*startblock \([0-9]*\).*/\1/p')
daddr=$(xfs_db -r -c "convert fsb $fsb daddr" "$out" | sed -n 's/.*(\([0-9]*\)).*/\1/p')
size=$(xfs_db -r -c "path /slowlink" -c "print core.size" "$out" | awk '{print $3}')
go run ./testdata/images/rootfs-fs-xfslink -img "$out" -ino "$ino" -block $((daddr * 512)) -daddr "$daddr" -size "$size" -uuid "$uuid"
xfs_repair -n "$out" > /dev/null 2>&1
