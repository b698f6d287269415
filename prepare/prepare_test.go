package prepare

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/internal/testagent"
	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/lint"
)

// demoConfig is what make demo gives prepare: the stock sample has no
// initramfs and no sshd, which a real build provides.
func demoConfig() *lint.Config {
	return &lint.Config{
		Severity:    map[string]lint.Severity{"DRV001": lint.Warning, "DRV002": lint.Warning, "DRV008": lint.Warning, "SSH001": lint.Warning},
		RemoveUsers: true,
	}
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func statuses(r *Report) map[string]string {
	m := map[string]string{}
	for _, s := range r.Steps {
		m[s.Name] = s.Status
	}
	return m
}

// leftovers lists what Run left beside the output besides the output.
func leftovers(t *testing.T, dir, output string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range ents {
		if filepath.Join(dir, e.Name()) != output {
			left = append(left, e.Name())
		}
	}
	return left
}

// TestPrepareQcow2 takes a stock Debian-like qcow2 (a format vhdprep
// cannot write) to a fixed VHD that passes the gate: every step runs, the
// input is unchanged, nothing but the output is left, and the output is
// what qemu-img reads as a VHD of the input's size, on which check finds
// no error.
func TestPrepareQcow2(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "qemu-img")
	in := testimage.Path(t, "disk-debian-mbr-qcow2")
	before := sum(t, in)
	dir := t.TempDir()
	out := filepath.Join(dir, "disk.vhd")
	var seen []string
	rep, err := Run(context.Background(), Options{
		AgentBinary: testagent.Binary(t),
		Input:       in, Output: out, Catalog: lint.Catalog(), Config: demoConfig(), FailOn: lint.Error,
		Done: func(s Step) { seen = append(seen, s.Name) },
	})
	if err != nil {
		t.Fatalf("Run: %v\nsteps: %+v", err, rep.Steps)
	}
	want := []string{StepConvert, StepCheck, StepAgent, StepFix, StepDeprovision, StepGate, StepOutput, StepUpload}
	if !slices.Equal(seen, want) {
		t.Errorf("steps = %v, want %v", seen, want)
	}
	st := statuses(rep)
	for _, s := range want[:len(want)-1] {
		if st[s] != Done {
			t.Errorf("step %s: %s, want done (%+v)", s, st[s], rep.Steps)
		}
	}
	if st[StepUpload] != Skipped {
		t.Errorf("upload: %s, want skipped without a destination", st[StepUpload])
	}
	if rep.Before.Errors == 0 || rep.Check.Summary.Errors != 0 || !rep.Written {
		t.Errorf("errors before %d, after %d, written %v: want some, none, true", rep.Before.Errors, rep.Check.Summary.Errors, rep.Written)
	}
	if sum(t, in) != before {
		t.Error("the input changed")
	}
	if left := leftovers(t, dir, out); len(left) > 0 {
		t.Errorf("left beside the output: %v", left)
	}
	if !slices.Contains(rep.Users, "debian") {
		t.Errorf("accounts = %v, want debian (removed)", rep.Users)
	}

	// qemu-img, the oracle, reads a VHD of the input's size.
	js, err := exec.Command("qemu-img", "info", "-f", "vpc", "--output=json", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal(js, &info); err != nil {
		t.Fatal(err)
	}
	im, err := diskimage.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	inSize := im.Disk.Size()
	im.Close()
	if info.Format != "vpc" || info.VirtualSize != inSize {
		t.Errorf("qemu-img sees %s of %d bytes, want vpc of %d", info.Format, info.VirtualSize, inSize)
	}

	// A check of its own, from scratch, agrees with the gate.
	tg, err := lint.OpenImage(out)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	again := lint.Run(tg, lint.Catalog(), demoConfig())
	if again.Fails(lint.Error) || tg.Container.Format != diskimage.VHDFixed {
		t.Errorf("check of the output: %+v, format %s", again.Summary, tg.Container.Format)
	}
	if !passed(again, "AGT001") || !passed(again, "SEC001") || !passed(again, "KRN001") {
		t.Errorf("AGT001, SEC001, KRN001 should pass on the output: %+v", again.Outcomes)
	}
}

// TestPrepareGateFails: with the default rules the sample keeps errors
// (no sshd), so the gate fails, no output is written, nothing is left
// beside it, and the report names what remains.
func TestPrepareGateFails(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck")
	in := testimage.Path(t, "disk-debian-mbr")
	before := sum(t, in)
	dir := t.TempDir()
	out := filepath.Join(dir, "disk.vhd")
	rep, err := Run(context.Background(), Options{AgentBinary: testagent.Binary(t), Input: in, Output: out, Catalog: lint.Catalog(), FailOn: lint.Error})
	if !errors.Is(err, ErrGate) {
		t.Fatalf("Run = %v, want ErrGate", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) || rep.Written {
		t.Errorf("output written after a failed gate (%v)", err)
	}
	if left := leftovers(t, dir, out); len(left) > 0 {
		t.Errorf("left beside the output: %v", left)
	}
	if sum(t, in) != before {
		t.Error("the input changed")
	}
	last := rep.Steps[len(rep.Steps)-1]
	if last.Name != StepGate || last.Status != Failed || rep.Check == nil || passed(rep.Check, "SSH001") {
		t.Errorf("last step %+v; SSH001 should remain in the gate's report", last)
	}
}

// TestPrepareOutputRules: an existing output is replaced only with Force,
// and the input is never the output.
func TestPrepareOutputRules(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck")
	in := testimage.Copy(t, "disk-debian-mbr")
	out := filepath.Join(t.TempDir(), "disk.vhd")
	if err := os.WriteFile(out, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{AgentBinary: testagent.Binary(t), Input: in, Output: out, Catalog: lint.Catalog(), Config: demoConfig(), FailOn: lint.Error}
	if _, err := Run(context.Background(), opts); !errors.Is(err, ErrExists) {
		t.Fatalf("existing output: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep me" {
		t.Fatal("the existing output was changed without Force")
	}
	opts.Force = true
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatalf("with Force: %v", err)
	}
	if fi, _ := os.Stat(out); fi == nil || fi.Size() < 1<<20 {
		t.Error("Force did not replace the output")
	}
	same := opts
	same.Output = in
	if _, err := Run(context.Background(), same); err == nil || errors.Is(err, ErrExists) {
		t.Errorf("output = input: %v, want a refusal that says so", err)
	}
}

// TestPrepareAgentKeep: agent keep injects nothing, so the gate finds no
// provisioning agent (AGT001) and fails.
func TestPrepareAgentKeep(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck")
	cfg := demoConfig()
	cfg.Agent = lint.AgentKeep
	out := filepath.Join(t.TempDir(), "disk.vhd")
	rep, err := Run(context.Background(), Options{AgentBinary: testagent.Binary(t), Input: testimage.Path(t, "disk-debian-mbr"), Output: out, Catalog: lint.Catalog(), Config: cfg, FailOn: lint.Error})
	if !errors.Is(err, ErrGate) || statuses(rep)[StepAgent] != Skipped || passed(rep.Check, "AGT001") {
		t.Errorf("agent keep: %v, steps %+v; want the agent step skipped and AGT001 failing the gate", err, rep.Steps)
	}
}

// TestPrepareInterrupted: a signal between steps stops Run before the next
// one; nothing is written and the working copy is removed.
func TestPrepareInterrupted(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	out := filepath.Join(dir, "disk.vhd")
	rep, err := Run(ctx, Options{
		AgentBinary: testagent.Binary(t),
		Input:       testimage.Path(t, "disk-debian-mbr"), Output: out, Catalog: lint.Catalog(), Config: demoConfig(), FailOn: lint.Error,
		Done: func(s Step) {
			if s.Name == StepCheck {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) || len(rep.Steps) != 2 {
		t.Fatalf("Run = %v after steps %+v; want context.Canceled after check", err, rep.Steps)
	}
	if left := leftovers(t, dir, ""); len(left) > 0 {
		t.Errorf("left after the signal: %v", left)
	}
}

// TestPrepareRemovesAStaleWorkingCopy: what a killed prepare left beside
// the output is removed by the next one.
func TestPrepareRemovesAStaleWorkingCopy(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck")
	dir := t.TempDir()
	out := filepath.Join(dir, "disk.vhd")
	for _, f := range []string{WorkPath(out), WorkPath(out) + ".vhdprep-pending"} {
		if err := os.WriteFile(f, []byte("stale"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Run(context.Background(), Options{AgentBinary: testagent.Binary(t), Input: testimage.Path(t, "disk-debian-mbr"), Output: out, Catalog: lint.Catalog(), Config: demoConfig(), FailOn: lint.Error}); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, dir, out); len(left) > 0 {
		t.Errorf("left beside the output: %v", left)
	}
}
