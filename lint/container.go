package lint

import (
	"fmt"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/raw"
	"github.com/vhdprep/vhdprep/raw/part"
	"github.com/vhdprep/vhdprep/vhd"
)

// Size limits for an OS disk image beyond Azure's own (vhd.AzureMinSize and
// vhd.AzureMaxSize, which upload's pre-flight enforces too).
const (
	unusualDiskSize   = 1023 << 30
	mbrDiskLimit      = 2 << 40
	errNoContainer    = "a directory has no container to check"
	errNoFooterReason = "the file has no VHD footer (see VHD001)"
)

func container(t *Target) (*Container, error) {
	if t.Container == nil {
		return nil, Skip(errNoContainer)
	}
	return t.Container, nil
}

// readableContainer is the container of a disk vhdprep can read: the
// virtual size of the others is unknown.
func readableContainer(t *Target) (*Container, error) {
	c, err := container(t)
	if err == nil && !c.Format.Readable() {
		return nil, Skip("vhdprep does not read %s images (see VHD001)", c.Format)
	}
	return c, err
}

func checkFixedVHD(t *Target) ([]Finding, error) {
	c, err := container(t)
	if err != nil || c.Format == diskimage.VHDFixed {
		return nil, err
	}
	if !c.Format.Readable() {
		return []Finding{{Message: fmt.Sprintf("%s is a %s image; Azure takes only fixed VHDs", t.Name, c.Format),
			Fix: diskimage.ConvertHint(c.Format, t.Name) + ", then vhdprep convert disk.raw " + shellQuote(fixedVHDName(t.Name))}}, nil
	}
	return []Finding{{
		Message: fmt.Sprintf("%s is a %s image; Azure takes only fixed VHDs", t.Name, c.Format),
		Fix:     fmt.Sprintf("vhdprep convert %s %s", shellQuote(t.Name), shellQuote(fixedVHDName(t.Name))),
	}}, nil
}

func checkFooter(t *Target) ([]Finding, error) {
	c, err := container(t)
	if err != nil {
		return nil, err
	}
	if c.Footer == nil {
		return nil, Skip(errNoFooterReason)
	}
	var fs []Finding
	for _, problem := range c.Footer.Validate() {
		fs = append(fs, Finding{Message: "VHD footer: " + problem.Error()})
	}
	return fs, nil
}

func checkFooterSize(t *Target) ([]Finding, error) {
	c, err := container(t)
	if err != nil {
		return nil, err
	}
	if c.Format != diskimage.VHDFixed {
		return nil, Skip("only a fixed VHD's footer describes the file's length (see VHD001)")
	}
	if data := c.FileSize - 512; c.Footer.CurrentSize != data {
		return []Finding{{Message: fmt.Sprintf("the footer says %d bytes but the file holds %d bytes of data", c.Footer.CurrentSize, data)}}, nil
	}
	return nil, nil
}

func checkMiBAligned(t *Target) ([]Finding, error) {
	c, err := readableContainer(t)
	if err != nil {
		return nil, err
	}
	if !raw.IsMiBAligned(c.VirtualSize) {
		return []Finding{{Message: fmt.Sprintf("virtual size %d is not a whole number of MiB (next: %d)", c.VirtualSize, raw.AlignMiB(c.VirtualSize))}}, nil
	}
	return nil, nil
}

func checkSizeLimits(t *Target) ([]Finding, error) {
	c, err := readableContainer(t)
	if err != nil {
		return nil, err
	}
	size := c.VirtualSize
	switch {
	case size < vhd.AzureMinSize:
		return []Finding{{Severity: Error, Message: fmt.Sprintf("virtual size %d is below Azure's minimum of 20 MiB", size),
			Fix: fmt.Sprintf("vhdprep resize %s --size 20M", t.Name)}}, nil
	case size > vhd.AzureMaxSize:
		return []Finding{{Severity: Error, Message: fmt.Sprintf("virtual size %d GiB is above the 4095 GiB an OS disk can have", size>>30),
			Fix: fmt.Sprintf("vhdprep resize %s --size 4095G --shrink", t.Name)}}, nil
	case size > mbrDiskLimit:
		return checkLargeDisk(t, size)
	case size > unusualDiskSize:
		return []Finding{{Severity: Warning, Message: fmt.Sprintf("virtual size %d GiB is above 1023 GiB; most OS images are far smaller", size>>30)}}, nil
	}
	return nil, nil
}

func checkCHSSize(t *Target) ([]Finding, error) {
	c, err := container(t)
	if err != nil {
		return nil, err
	}
	if c.Footer == nil {
		return nil, Skip(errNoFooterReason)
	}
	if q := c.Footer.QemuSize(); q != c.Footer.CurrentSize {
		return []Finding{{Message: fmt.Sprintf("creator %q: readers that trust the CHS geometry see %d bytes, not %d", c.Footer.CreatorApp, q, c.Footer.CurrentSize)}}, nil
	}
	return nil, nil
}

// checkLargeDisk: above 2 TiB a disk must be GPT and boot as Gen2, since MBR
// and BIOS address no more.
func checkLargeDisk(t *Target, size int64) ([]Finding, error) {
	g, err := t.layout()
	if err != nil {
		return nil, err
	}
	if g.Layout.Table.Scheme == part.SchemeMBR {
		return []Finding{{Severity: Error, Message: fmt.Sprintf("virtual size %d GiB is above the 2 TiB an MBR partition table can address; use GPT", size>>30)}}, nil
	}
	if b := g.DetectBoot(); !b.Gen2 {
		return []Finding{{Severity: Error, Message: fmt.Sprintf("virtual size %d GiB is above 2 TiB, which only Gen2 (UEFI) VMs boot, and the disk has no UEFI boot path", size>>30)}}, nil
	}
	return []Finding{{Severity: Warning, Message: fmt.Sprintf("virtual size %d GiB is above 1023 GiB; most OS images are far smaller", size>>30)}}, nil
}
