//go:build !linux

package resourcedisk

import (
	"errors"
	"os"
)

// The agent runs on Linux guests only; elsewhere zeros are written.
func fallocate(*os.File, int64) error { return errors.ErrUnsupported }
