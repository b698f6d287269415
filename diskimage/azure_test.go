package diskimage

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/raw/part"
	"github.com/vhdprep/vhdprep/vhd"
)

// fixedVHD is the container of a fixed VHD of size bytes whose file holds
// data bytes before the footer; edit changes the footer.
func fixedVHD(t *testing.T, size, data int64, edit func(*vhd.Footer)) Container {
	t.Helper()
	f, err := vhd.NewFixedFooter(size, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(f)
	}
	b, _ := f.MarshalBinary()
	f, _ = vhd.ParseFooter(b) // as read: the checksum is the one written
	if edit != nil {
		edit(f)
	}
	return Container{Path: "d.vhd", Format: VHDFixed, FileSize: data + vhd.FooterSize, VirtualSize: data, Footer: f, Scheme: part.SchemeGPT}
}

// AzureVerdict is the one judge of Azure's container requirements: every
// bound and rule, with the error it wraps, whether Azure takes the disk,
// and the fix it names.
func TestAzureVerdict(t *testing.T) {
	gen2 := func(b bool) func() (bool, string) { return func() (bool, string) { return b, "ESP checked" } }
	mbr := func(c Container) Container { c.Scheme = part.SchemeMBR; return c }
	boots := func(c Container, f func() (bool, string)) Container { c.BootsGen2 = f; return c }
	rawDisk := Container{Path: "d.raw", Format: Raw, FileSize: 30 << 30, VirtualSize: 30 << 30}
	cases := []struct {
		name     string
		c        Container
		need     Requirement
		want     error // nil: no problem at all
		accepted bool
		fix      string
	}{
		{"30 GiB", fixedVHD(t, 30<<30, 30<<30, nil), 0, nil, true, ""},
		{"20 MiB", fixedVHD(t, 20<<20, 20<<20, nil), 0, nil, true, ""},
		{"4095 GiB GPT Gen2", boots(fixedVHD(t, 4095<<30, 4095<<30, nil), gen2(true)), NeedSizeLimits, ErrAzureSize, true, ""},
		{"10 MiB", fixedVHD(t, 10<<20, 10<<20, nil), NeedSizeLimits, ErrAzureSize, false, "vhdprep resize d.vhd --size 20M"},
		{"5 TiB", fixedVHD(t, 5<<40, 5<<40, nil), NeedSizeLimits, ErrAzureSize, false, "vhdprep resize d.vhd --size 4095G --shrink"},
		{"4096 GiB", fixedVHD(t, 4096<<30, 4096<<30, nil), NeedSizeLimits, ErrAzureSize, false, "--shrink"},
		{"not a whole MiB", fixedVHD(t, 30<<30+4096, 30<<30+4096, nil), NeedWholeMiB, ErrAzureSize, false, "vhdprep resize d.vhd --align"},
		{"1500 GiB", fixedVHD(t, 1500<<30, 1500<<30, nil), NeedSizeLimits, ErrAzureSize, true, ""},
		{"3 TiB MBR", mbr(fixedVHD(t, 3<<40, 3<<40, nil)), NeedSizeLimits, ErrAzureSize, false, "GPT"},
		{"3 TiB GPT without UEFI", boots(fixedVHD(t, 3<<40, 3<<40, nil), gen2(false)), NeedSizeLimits, ErrAzureSize, false, "UEFI loader"},
		{"3 TiB GPT, boot unknown", fixedVHD(t, 3<<40, 3<<40, nil), NeedSizeLimits, ErrAzureSize, true, "Gen2"},
		{"truncated", fixedVHD(t, 20<<20, 5<<20, nil), NeedFooterSize, ErrTruncated, false, "--accept-data-loss"},
		{"over-long", fixedVHD(t, 20<<20, 25<<20, nil), NeedFooterSize, ErrOverLong, false, "--accept-data-loss"},
		{"version 2", fixedVHD(t, 30<<30, 30<<30, func(f *vhd.Footer) { f.FormatVersion = 0x00020000 }), NeedValidFooter, vhd.ErrInvalid, false, "vhdprep convert d.vhd"},
		{"CHS-rounded creator", fixedVHD(t, 30<<30, 30<<30, func(f *vhd.Footer) { f.CreatorApp = "vpc " }), NeedCHSAgreement, ErrCHSSize, true, "vhdprep convert d.vhd"},
		{"raw", rawDisk, NeedFixedVHD, ErrNotFixedVHD, false, "vhdprep convert d.raw d-fixed.vhd"},
		{"VHDX", Container{Path: "d.vhdx", Format: VHDX, FileSize: 1 << 20}, NeedFixedVHD, ErrNotFixedVHD, false, "vhdprep convert d.vhdx d-fixed.vhd"},
		{"VMDK", Container{Path: "d.vmdk", Format: VMDK, FileSize: 1 << 20}, NeedFixedVHD, ErrNotFixedVHD, false, "vhdprep convert d.vmdk d-fixed.vhd"},
		{"OVA", Container{Path: "vm.ova", Format: OVA, FileSize: 1 << 20}, NeedFixedVHD, ErrNotFixedVHD, false, "vhdprep convert vm.ova vm-fixed.vhd"},
		{"ISO", Container{Path: "d.iso", Format: ISO, FileSize: 1 << 20}, NeedFixedVHD, ErrNotFixedVHD, false, "install the system"},
	}
	for _, c := range cases {
		v := AzureVerdict(c.c)
		if v.Accepted() != c.accepted {
			t.Errorf("%s: accepted %v, want %v (%v)", c.name, v.Accepted(), c.accepted, v)
		}
		if c.want == nil {
			if len(v) != 0 {
				t.Errorf("%s: %v, want no problem", c.name, v)
			}
			continue
		}
		ps := v.Of(c.need)
		if len(ps) == 0 || !errors.Is(ps[0].Err, c.want) || !strings.Contains(ps[0].Fix, c.fix) || ps[0].Warning != c.accepted {
			t.Errorf("%s: %+v, want %v fixed by %q", c.name, ps, c.want, c.fix)
		}
		if err := v.Err(); !c.accepted && (!errors.Is(err, c.want) || !strings.Contains(err.Error(), c.fix)) {
			t.Errorf("%s: Err() = %v", c.name, err)
		}
	}
}

// A truncated VHD names both sizes, and no fix for it or for its size is a
// resize, which would write a new footer over the evidence.
func TestTruncatedVHDIsNeverFixedByAResize(t *testing.T) {
	v := AzureVerdict(fixedVHD(t, 20<<20, 5<<20+4096, nil))
	msg := v.Err().Error()
	if !strings.Contains(msg, "20971520") || !strings.Contains(msg, "5246976") || !strings.Contains(msg, "truncated") {
		t.Fatalf("%s: want both sizes and the word truncated", msg)
	}
	for _, p := range v {
		if strings.Contains(p.Fix, "resize") {
			t.Errorf("%v suggests a resize", p)
		}
	}
}
