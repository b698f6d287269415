package upload

import (
	"fmt"
	"io"

	"github.com/vhdprep/vhdprep/vhd"
)

// checkFixedForAzure stands in for vhd.CheckFixedForAzure until it lands.
func checkFixedForAzure(r io.ReaderAt, fileSize int64) (*vhd.Footer, error) {
	f, err := vhd.ReadFooter(r, fileSize)
	if err != nil {
		return nil, fmt.Errorf("not a VHD (%w); run vhdprep convert", err)
	}
	if errs := f.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid VHD footer: %w; run vhdprep convert", errs[0])
	}
	if f.DiskType != vhd.DiskFixed {
		return nil, fmt.Errorf("a %s VHD, not fixed; run vhdprep convert", f.DiskType)
	}
	if f.CurrentSize != fileSize-vhd.FooterSize || f.CurrentSize%(1<<20) != 0 {
		return nil, fmt.Errorf("size %d is not the file's data or not whole MiB; run vhdprep resize", f.CurrentSize)
	}
	return f, nil
}
