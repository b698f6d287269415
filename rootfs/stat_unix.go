//go:build unix

package rootfs

import (
	"io/fs"
	"syscall"
)

// hostStat gives a host file's owner and mode the way the guest sees them.
func hostStat(info fs.FileInfo) *Stat {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return &Stat{Mode: uint32(st.Mode), UID: st.Uid, GID: st.Gid, Inode: st.Ino, Nlink: uint32(st.Nlink)}
}
