package lint

import (
	"github.com/vhdprep/vhdprep/diskimage"
)

// The container rules report diskimage.AzureVerdict, one requirement each,
// in the words info and upload use; here is only when a rule cannot decide.
const (
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

func withFooter(t *Target) (*Container, error) {
	c, err := container(t)
	if err == nil && c.Footer == nil {
		return nil, Skip(errNoFooterReason)
	}
	return c, err
}

func fixedVHD(t *Target) (*Container, error) {
	c, err := container(t)
	if err == nil && c.Format != diskimage.VHDFixed {
		return nil, Skip("only a fixed VHD's footer describes the file's length (see VHD001)")
	}
	return c, err
}

// verdictRule is the check of the rule for requirement n: the verdict's
// problems with it, on a container applies accepts.
func verdictRule(n diskimage.Requirement, applies func(*Target) (*Container, error)) func(*Target) ([]Finding, error) {
	return func(t *Target) ([]Finding, error) {
		c, err := applies(t)
		if err != nil {
			return nil, err
		}
		var fs []Finding
		for _, p := range diskimage.AzureVerdict(*c).Of(n) {
			f := Finding{Message: p.Err.Error(), Fix: p.Fix}
			if p.Warning {
				f.Severity = Warning
			}
			fs = append(fs, f)
		}
		return fs, nil
	}
}

var (
	checkFixedVHD   = verdictRule(diskimage.NeedFixedVHD, container)
	checkFooter     = verdictRule(diskimage.NeedValidFooter, withFooter)
	checkFooterSize = verdictRule(diskimage.NeedFooterSize, fixedVHD)
	checkMiBAligned = verdictRule(diskimage.NeedWholeMiB, readableContainer)
	checkSizeLimits = verdictRule(diskimage.NeedSizeLimits, readableContainer)
	checkCHSSize    = verdictRule(diskimage.NeedCHSAgreement, withFooter)
)
