// Package prepare is vhdprep prepare: the whole job of taking an image to
// Azure in one call. Each step is the library verb its own command runs
// (diskimage.Convert, lint.Run, inject.Inject, lint.Fix, lint.Deprovision,
// upload.Upload), in the order that lets each one's repairs hold: the
// agent before fix (so fix sees who owns the resource disk), deprovision
// after fix (so nothing fix writes is left machine-specific), the gate
// last. The input is never changed: the steps work on a fixed VHD copy
// beside the output, which becomes the output only when the gate passes.
package prepare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vhdprep/vhdprep/agent/inject"
	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/internal/imagelock"
	"github.com/vhdprep/vhdprep/internal/units"
	"github.com/vhdprep/vhdprep/lint"
	"github.com/vhdprep/vhdprep/progress"
	"github.com/vhdprep/vhdprep/rootfs/write"
	"github.com/vhdprep/vhdprep/upload"
)

// ErrGate is the final check failing at or above Options.FailOn: the
// output is not written.
var ErrGate = errors.New("the final check failed")

// ErrExists is an output that is there already, without Options.Force.
var ErrExists = errors.New("the output exists")

// Options says what Run does.
type Options struct {
	Input  string // an image of any format vhdprep reads
	Output string // the fixed VHD to write
	Force  bool   // replace an existing output
	// Size is the output's virtual size; 0 keeps the input's, rounded up
	// to a whole MiB.
	Size    int64
	Catalog []*lint.Rule
	// Config holds the rules' configuration and prepare's choices: which
	// agent (Config.Agent) and whether deprovisioning removes accounts.
	Config *lint.Config
	FailOn lint.Severity // the gate fails at a finding this severe
	// AgentBinary, when set, is the agent the agent step installs instead
	// of the one built into vhdprep (agent inject --agent-binary).
	AgentBinary []byte
	// Upload, when set, is where the output goes once written: options
	// resolved by upload.Destination.Options for the output's path.
	Upload   *upload.Options
	Progress progress.Reporter // the conversion's and the upload's
	// Done, when set, is told of each step as it ends.
	Done func(Step)
	// Logf, when set, is told what each step starts (and the upload's
	// retries and throttles): -v.
	Logf func(format string, args ...any)
}

// Step names, in the order Run takes them.
const (
	StepConvert     = "convert"
	StepCheck       = "check"
	StepAgent       = "agent"
	StepFix         = "fix"
	StepDeprovision = "deprovision"
	StepGate        = "gate"
	StepOutput      = "output"
	StepUpload      = "upload"
)

// Step statuses.
const (
	Done    = "done"
	Skipped = "skipped"
	Failed  = "failed"
)

// Step is what one step did.
type Step struct {
	Name    string  `json:"name"`
	Status  string  `json:"status"`
	Summary string  `json:"summary"` // one line
	Seconds float64 `json:"elapsed_seconds"`
	// Files are the files in the image the step changed.
	Files []string `json:"files"`
	// Rules are fix's and deprovision's changes, rule by rule.
	Rules []lint.RuleFix `json:"rules"`
	// Notes are what the user must still do.
	Notes []string `json:"notes"`
	Error string   `json:"error,omitempty"`
}

// Report is what Run did, step by step, and what remains.
type Report struct {
	Input  string `json:"image"`
	Output string `json:"output"`
	// Written tells that the output was written (every step before it
	// passed).
	Written bool   `json:"written"`
	Steps   []Step `json:"steps"`
	// Before is check's summary of the input; Check the gate's report of
	// the output: what remains.
	Before *lint.Summary            `json:"check_before,omitempty"`
	Check  *lint.Report             `json:"check,omitempty"`
	FailOn lint.Severity            `json:"fail_on"`
	Upload *upload.Summary          `json:"upload,omitempty"`
	Agents []string                 `json:"agents_disabled"`
	Users  []string                 `json:"accounts"`
	Disk   *diskimage.ConvertResult `json:"convert,omitempty"`
}

// Run prepares Options.Input into Options.Output. The report says what
// each step did even when one fails; the error names the step. The output
// appears only when every step up to the gate passed; a failure, a kill or
// a signal leaves the input as it was and no output.
func Run(ctx context.Context, o Options) (*Report, error) {
	r := &Report{Input: o.Input, Output: o.Output, FailOn: o.FailOn}
	if err := refuseOutput(o); err != nil {
		return r, err
	}
	// A second prepare to the same output waits for this one, and a
	// stale working copy from a killed one is ours to remove.
	lock, err := imagelock.Take(o.Output)
	if err != nil {
		return r, fmt.Errorf("prepare %w", err)
	}
	defer lock.Release()
	w := &run{Options: o, report: r, work: WorkPath(o.Output)}
	w.cfg = o.Config
	if w.cfg == nil {
		w.cfg = &lint.Config{}
	}
	removeWork(w.work)
	defer func() {
		if !r.Written {
			removeWork(w.work)
		}
	}()
	for _, s := range []struct {
		name string
		do   func(context.Context, *Step) error
	}{
		{StepConvert, w.convert},
		{StepCheck, w.check},
		{StepAgent, w.agent},
		{StepFix, w.fix},
		{StepDeprovision, w.deprovision},
		{StepGate, w.gate},
		{StepOutput, w.output},
		{StepUpload, w.upload},
	} {
		if err := ctx.Err(); err != nil {
			return r, interrupted(r, err)
		}
		step := Step{Name: s.name, Status: Done}
		w.logf("prepare: %s", s.name)
		start := time.Now()
		err := s.do(ctx, &step)
		step.Seconds = time.Since(start).Seconds()
		if err != nil {
			step.Status, step.Error = Failed, err.Error()
		}
		r.Steps = append(r.Steps, step)
		if o.Done != nil {
			o.Done(step)
		}
		if err != nil {
			if ctx.Err() != nil && !r.Written {
				return r, interrupted(r, err)
			}
			return r, err
		}
	}
	return r, nil
}

// WorkPath is the working copy prepare makes the output in, beside it (so
// that it becomes the output by a rename, on the same filesystem).
func WorkPath(output string) string { return output + ".vhdprep-work" }

// removeWork removes a working copy and what vhdprep keeps beside it
// (lock, undo files, crash record): all made from the input, which is
// left as it was.
func removeWork(work string) {
	os.Remove(work)
	extra, _ := filepath.Glob(globEscape(work) + ".vhdprep-*")
	for _, f := range extra {
		os.Remove(f)
	}
}

func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(s)
}

// interrupted says what a stop by signal left.
func interrupted(r *Report, err error) error {
	if r.Written {
		return err
	}
	return fmt.Errorf("%w: the input is unchanged and %s was not written", context.Canceled, r.Output)
}

// refuseOutput refuses an output that is there already (without Force),
// or is the input itself.
func refuseOutput(o Options) error {
	out, err := os.Stat(o.Output)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("prepare: %w", err)
	}
	if in, err := os.Stat(o.Input); err == nil && os.SameFile(in, out) {
		return fmt.Errorf("prepare %s: the output is the input; give another output file (prepare never changes its input)", o.Input)
	}
	if !o.Force {
		return fmt.Errorf("prepare %s: %s: %w; give --force to replace it", o.Input, o.Output, ErrExists)
	}
	return nil
}

// run is one Run's state.
type run struct {
	Options
	cfg    *lint.Config
	report *Report
	work   string
	before *lint.Report
}

// open opens the working copy, named in reports as the input the user
// gave: its findings are about that image.
func (w *run) open(change bool) (*lint.Target, error) {
	t, err := lint.Opener(w.work, "")(change)
	if t != nil {
		t.Name = w.Input
		if t.Guest != nil {
			t.Guest.Name = w.Input
		}
	}
	return t, err
}

// openGuest is open for agent inject, which works on the guest.
func (w *run) openGuest(change bool) (*guest.Guest, error) {
	g, err := guest.Opener(w.work, "")(change)
	if g != nil {
		g.Name = w.Input
	}
	return g, err
}

func (w *run) convert(ctx context.Context, s *Step) error {
	res, err := diskimage.Convert(ctx, diskimage.ConvertOptions{
		Input: w.Input, Output: w.work, Size: w.Size, Force: true, Progress: w.Progress,
	})
	if err != nil {
		return err
	}
	w.report.Disk = res
	s.Summary = fmt.Sprintf("%s to a fixed VHD of %s", res.InputFormat, units.Bytes(res.VirtualSize))
	return nil
}

func (w *run) checkNow() (*lint.Report, error) {
	t, err := w.open(false)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return lint.Run(t, w.Catalog, w.cfg), nil
}

func (w *run) check(_ context.Context, s *Step) error {
	rep, err := w.checkNow()
	if err != nil {
		return err
	}
	w.before, w.report.Before = rep, &rep.Summary
	s.Summary = counts(rep.Summary)
	return nil
}

func (w *run) agent(ctx context.Context, s *Step) error {
	choice := w.cfg.Agent
	if choice == "" {
		choice = lint.AgentAuto
	}
	switch {
	case choice == lint.AgentKeep:
		s.Status, s.Summary = Skipped, "agent: keep: no agent injected"
		return nil
	case choice == lint.AgentAuto && passed(w.before, "AGT001"):
		s.Status, s.Summary = Skipped, "the image's own provisioning agent is kept (AGT001 passes; agent: inject or replace to use vhdprep's)"
		return nil
	}
	res, err := inject.Inject(ctx, w.openGuest, false, inject.Options{Binary: w.AgentBinary, ReplaceAgents: choice == lint.AgentReplace, Verify: lint.VerifyGuest})
	if err != nil {
		return err
	}
	p := res.Plan
	s.Files = changedPaths(p.Changes)
	s.Summary = fmt.Sprintf("vhdprep's agent (%s) injected", p.Arch)
	if len(p.Changes) == 0 {
		s.Summary = "vhdprep's agent is installed already"
	}
	w.report.Agents = p.Agents
	for _, n := range []string{p.ResourceDisk, p.Media} {
		if n != "" {
			s.Notes = append(s.Notes, n)
		}
	}
	return nil
}

func (w *run) fix(ctx context.Context, s *Step) error {
	res, err := lint.Fix(ctx, lint.FixOptions{Open: w.open, Catalog: w.Catalog, Config: w.cfg})
	if res != nil && res.Plan != nil {
		s.Rules = res.Plan.Rules
		s.Files = changedPaths(res.Plan.Changes)
		s.Summary = fmt.Sprintf("%s repaired, %s changed", plural(repaired(res.Plan.Rules), "rule"), plural(len(s.Files), "file"))
		for _, rf := range res.Plan.Rules {
			for _, n := range rf.Notes {
				s.Notes = append(s.Notes, rf.ID+": "+n)
			}
		}
	}
	return err
}

func (w *run) deprovision(ctx context.Context, s *Step) error {
	res, err := lint.Deprovision(ctx, lint.DeprovisionOptions{Open: w.open, RemoveUsers: w.cfg.RemoveUsers})
	if res != nil {
		w.report.Users = res.Users
		s.Rules = res.Plan.Rules
		s.Files = changedPaths(res.Plan.Changes)
		s.Summary = plural(len(s.Files), "file") + " changed"
		if len(res.Users) > 0 {
			verb := "kept (remove-users: true removes them)"
			if w.cfg.RemoveUsers {
				verb = "removed"
			}
			s.Summary += fmt.Sprintf("; accounts %s: %s", verb, strings.Join(res.Users, ", "))
		}
	}
	return err
}

func (w *run) gate(_ context.Context, s *Step) error {
	rep, err := w.checkNow()
	if err != nil {
		return err
	}
	w.report.Check = rep
	s.Summary = counts(rep.Summary)
	if rep.Fails(w.FailOn) {
		return fmt.Errorf("%w (%s; the gate fails at %s): %s was not written", ErrGate, s.Summary, w.FailOn, w.Output)
	}
	return nil
}

// output makes the working copy the output: by a rename over it with
// Force, else by a link that fails if another process made one meanwhile.
func (w *run) output(_ context.Context, s *Step) error {
	var err error
	if w.Force {
		err = os.Rename(w.work, w.Output)
	} else if err = os.Link(w.work, w.Output); err == nil {
		err = os.Remove(w.work)
	}
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s: %w (made while prepare ran); give --force to replace it", w.Output, ErrExists)
	}
	if err != nil {
		return err
	}
	w.report.Written = true
	if err := syncDir(filepath.Dir(w.Output)); err != nil {
		return err
	}
	s.Summary = fmt.Sprintf("%s: a fixed VHD of %s", w.Output, units.Bytes(w.report.Disk.VirtualSize))
	return nil
}

func (w *run) upload(ctx context.Context, s *Step) error {
	if w.Upload == nil {
		s.Status, s.Summary = Skipped, "no destination given"
		return nil
	}
	opts := *w.Upload
	opts.File = w.Output
	opts.BootsGen2 = guest.BootsGen2(w.Output)
	opts.Logf = w.Logf
	sum, err := upload.Upload(ctx, opts, progress.Or(w.Progress))
	w.report.Upload = sum
	if err != nil {
		return err
	}
	s.Summary = fmt.Sprintf("%s of data sent to %s", units.Bytes(sum.SentBytes), sum.Blob)
	return nil
}

func (w *run) logf(format string, args ...any) {
	if w.Logf != nil {
		w.Logf(format, args...)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func passed(r *lint.Report, id string) bool {
	for _, o := range r.Outcomes {
		if o.ID == id {
			return o.Status == lint.Passed
		}
	}
	return false
}

func repaired(rules []lint.RuleFix) int {
	n := 0
	for _, rf := range rules {
		if rf.Error == "" && rf.Command == "" && len(rf.Files) > 0 {
			n++
		}
	}
	return n
}

func counts(s lint.Summary) string {
	return fmt.Sprintf("%s, %s, %d info", plural(s.Errors, "error"), plural(s.Warnings, "warning"), s.Infos)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// changedPaths lists the files a plan changes.
func changedPaths(cs []write.Change) []string {
	paths := make([]string, len(cs))
	for i, c := range cs {
		paths[i] = c.Path
	}
	return paths
}
