package diskimage

import (
	"os"

	"golang.org/x/sys/unix"
)

func copyFileRange(src *os.File, roff *int64, dst *os.File, woff *int64, n int) (int, error) {
	return unix.CopyFileRange(int(src.Fd()), roff, int(dst.Fd()), woff, n, 0)
}
