package lint

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw"
)

// outcomes runs the container rules on an image and returns each rule's
// status and first message.
func outcomes(t *testing.T, path string) map[string]Outcome {
	t.Helper()
	target, err := OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Outcome{}
	for _, o := range Run(target, Catalog()[:6], nil).Outcomes {
		got[o.ID] = o
	}
	return got
}

func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.WriteAt([]byte("data"), 0)
	f.Close()
}

func wantStatus(t *testing.T, got map[string]Outcome, want map[string]Status) {
	t.Helper()
	for id, s := range want {
		if got[id].Status != s {
			t.Errorf("%s: %s (%v %s), want %s", id, got[id].Status, got[id].Findings, got[id].Reason, s)
		}
	}
}

func TestContainerRulesOnAGoodVHD(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "d.raw"), filepath.Join(dir, "d.vhd")
	sparse(t, in, 30*raw.MiB)
	if _, err := diskimage.Convert(context.Background(), diskimage.ConvertOptions{Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, outcomes(t, out), map[string]Status{
		"VHD001": Passed, "VHD002": Passed, "VHD003": Passed, "VHD004": Passed, "VHD005": Passed, "VHD006": Passed,
	})
}

func TestContainerRulesOnARawFile(t *testing.T) {
	in := filepath.Join(t.TempDir(), "d.raw")
	sparse(t, in, 10*raw.MiB+512)
	got := outcomes(t, in)
	wantStatus(t, got, map[string]Status{
		"VHD001": Failed, "VHD002": Skipped, "VHD003": Skipped, "VHD004": Failed, "VHD005": Failed, "VHD006": Skipped,
	})
	if f := got["VHD005"].Findings[0]; f.Severity != Error {
		t.Errorf("a 10 MiB disk is a %s, want error", f.Severity)
	}
}

// A VHD whose footer was written by qemu-img without force_size: readers
// that use the CHS geometry see another size (VHD006), and the size is not
// a whole MiB (VHD004).
func TestContainerRulesOnQemuCHSRoundedVHD(t *testing.T) {
	testimage.RequireTools(t, "qemu-img")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "d.raw"), filepath.Join(dir, "d.vhd")
	sparse(t, in, 100*raw.MiB)
	if b, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", in, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, b)
	}
	got := outcomes(t, out)
	wantStatus(t, got, map[string]Status{"VHD001": Passed, "VHD002": Passed, "VHD003": Passed})
	if got["VHD004"].Status != Failed && got["VHD006"].Status != Failed {
		t.Errorf("a CHS-rounded qemu VHD passed both VHD004 and VHD006: %+v %+v", got["VHD004"], got["VHD006"])
	}
}

func TestContainerRulesSkipForADirectory(t *testing.T) {
	rep := Run(&Target{Name: "rootfs/"}, Catalog()[:6], nil)
	for _, o := range rep.Outcomes {
		if o.Status != Skipped {
			t.Errorf("%s on a directory: %s, want skipped", o.ID, o.Status)
		}
	}
}

// A 3 TiB sparse disk: with an MBR it cannot be addressed; as a blank GPT
// disk without a UEFI loader it cannot boot as Gen2.
func TestLargeDisks(t *testing.T) {
	testimage.RequireTools(t, "sfdisk")
	for label, want := range map[string]string{"dos": "MBR", "gpt": "Gen2"} {
		path := filepath.Join(t.TempDir(), "big.raw")
		sparse(t, path, 3<<40)
		cmd := exec.Command("sfdisk", "-q", path)
		cmd.Stdin = strings.NewReader("label: " + label + "\n,100M,L\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v %s", err, out)
		}
		o := outcomes(t, path)["VHD005"]
		if o.Status != Failed || !strings.Contains(o.Findings[0].Message, want) || o.Findings[0].Severity != Error {
			t.Errorf("%s: %+v", label, o)
		}
	}
}

// A container vhdprep does not read (installation media) is reported by
// VHD001 with what to do, and no other rule judges it; one it reads but
// finds corrupt is refused when opened, naming the file.
func TestUnreadableContainersAreReported(t *testing.T) {
	corrupt := filepath.Join(t.TempDir(), "d.vhdx")
	os.WriteFile(corrupt, append([]byte("vhdxfile"), make([]byte, 1<<20)...), 0o644)
	if _, err := OpenImage(corrupt); err == nil || !strings.Contains(err.Error(), corrupt) {
		t.Errorf("OpenImage(corrupt VHDX) = %v, want an error naming it", err)
	}
	path := filepath.Join(t.TempDir(), "d.iso")
	iso := make([]byte, 1<<20)
	copy(iso[0x8001:], "CD001")
	os.WriteFile(path, iso, 0o644)
	target, err := OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	rep := Run(target, Catalog(), nil)
	o := rep.Outcomes[0]
	if o.ID != "VHD001" || o.Status != Failed || !strings.Contains(o.Findings[0].Fix, "install the system") {
		t.Fatalf("%+v", o)
	}
	for _, o := range rep.Outcomes[1:] {
		if o.Status == Passed || o.Status == Failed {
			t.Errorf("%s %s on an unreadable container", o.ID, o.Status)
		}
	}
}
