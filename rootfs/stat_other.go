//go:build !unix

package rootfs

import "io/fs"

// hostStat has nothing to report where the host has no POSIX owners.
func hostStat(fs.FileInfo) *Stat { return nil }
