# Sourced by the rootfs-fs-* recipes: the tree every bare filesystem test
# image holds, and the owners and modes set afterwards without root.

# rootfs_fs_tree DIR [nosparse]: a small guest tree with what a reader must
# get right: directories of 40, 400 (an htree once indexed) and 3000
# entries (XFS block, leaf, and node form with an extent B+tree), a slow symlink of 506 bytes
# (remote on XFS), a 3.4 MB
# file (seq 1 500000), empty, 4-byte and 100-byte files and a directory of
# 8 entries (inline data, with an xattr part), a 100 MiB sparse file with
# data in the middle and at the end, a file of 40 islands (many extents),
# a fifo, fast, slow, absolute and looping symlinks, and a symlink climbing
# above the root. nosparse leaves out the sparse files and the fifo.
rootfs_fs_tree() {
  local d=$1 i
  mkdir -p "$d"/etc/many "$d"/usr/bin "$d"/tmp "$d"/deep/a/b/c/d/e
  echo guest > "$d/etc/hostname"
  printf 'ID=testos\nVERSION_ID=1\n' > "$d/etc/os-release"
  printf tiny > "$d/etc/tiny"
  printf '%0100d' 7 > "$d/etc/medium"
  mkdir "$d/inl"
  for i in 1 2 3 4 5 6 7 8; do echo "$i" > "$d/inl/f$i"; done
  : > "$d/etc/empty"
  echo secret > "$d/etc/shadow"
  for i in $(seq 1 400); do echo "$i" > "$d/etc/many/entry-$i.conf"; done
  mkdir "$d/blockdir" "$d/nodedir"
  for i in $(seq 1 40); do : > "$d/blockdir/block-entry-$i"; done
  for i in $(seq 1 3000); do : > "$d/nodedir/f$i"; done
  seq 1 500000 > "$d/usr/bin/big"
  echo deep > "$d/deep/a/b/c/d/e/file"
  if [ "${2:-}" != nosparse ]; then
    truncate -s 100M "$d/sparse"
    printf middle | dd of="$d/sparse" bs=1 seek=$((50 * MiB)) conv=notrunc status=none
    printf end | dd of="$d/sparse" bs=1 seek=$((100 * MiB - 3)) conv=notrunc status=none
    for i in $(seq 0 39); do
      printf 'island-%02d' "$i" | dd of="$d/islands" bs=1 seek=$((i * 256 * 1024)) conv=notrunc status=none
    done
    mkfifo "$d/fifo"
  fi
  ln -s usr/bin "$d/bin"
  ln -s /etc/hostname "$d/hostname-abs"
  ln -s "$(printf 'long/%.0s' $(seq 1 100))target" "$d/slowlink"
  ln -s deep/a/b/c/d/e "$d/deeplink"
  ln -s loop-b "$d/loop-a"
  ln -s loop-a "$d/loop-b"
  ln -s ../../../../../etc/hostname "$d/deep/a/climb"
}

# rootfs_fs_ext_finish IMG: index every directory (e2fsck -D builds the
# htree a running kernel would) and set owners and modes with debugfs.
rootfs_fs_ext_finish() {
  e2fsck -fyD "$1" > /dev/null || [ $? -le 1 ]
  debugfs -w "$1" -f - > /dev/null 2>&1 <<'CMDS'
set_inode_field /etc/shadow uid 0
set_inode_field /etc/shadow gid 42
set_inode_field /etc/shadow mode 0100640
set_inode_field /usr/bin/big uid 1000
set_inode_field /usr/bin/big gid 1001
set_inode_field /usr/bin/big mode 0104755
set_inode_field /tmp mode 041777
CMDS
}
