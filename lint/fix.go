package lint

import (
	"context"
	"fmt"

	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

// Plan is what vhdprep fix would change.
type Plan struct {
	Report  *Report        // the check the plan answers
	Rules   []RuleFix      // per rule: what its repair touched, or why it could not
	Changes []write.Change // every file change, merged
	// Command is the vhdprep command that writes the plan ("fix" when
	// empty), named in the remedies of a refusal.
	Command string
	overlay *Overlay
}

// Commands that write plans into images, as their refusals name them.
const (
	CommandFix         = "fix"
	CommandDeprovision = "deprovision"
)

func (p *Plan) command() string {
	if p.Command == "" {
		return CommandFix
	}
	return p.Command
}

// RuleFix is one rule's part of a plan.
type RuleFix struct {
	ID    string   `json:"id"`
	Files []string `json:"files"`
	Notes []string `json:"notes"` // what the user must still do
	// Command is the other vhdprep command that fixes the rule (agent
	// inject, deprovision), where fix itself does not.
	Command string `json:"command,omitempty"`
	Error   string `json:"error,omitempty"`
}

// PlanFix checks the target and lets every failing rule that can repair
// itself (only those named in only, when given) edit an overlay.
func PlanFix(t *Target, catalog []*Rule, cfg *Config, only []string) (*Plan, error) {
	root, err := t.root()
	if err != nil {
		return nil, fmt.Errorf("fix needs the guest's files: %w", err)
	}
	rep := Run(t, catalog, cfg)
	p := &Plan{Report: rep, Command: CommandFix, overlay: write.NewOverlay(root)}
	for _, o := range rep.Outcomes {
		if o.Status != Failed || !o.Rule.Fixable || (len(only) > 0 && !contains(only, o.ID)) {
			continue
		}
		if o.Rule.Repair == nil {
			// Another command's: the one check found works here, or why
			// none does.
			rf := RuleFix{ID: o.ID, Command: commandOf(o)}
			if rf.Command == "" {
				rf.Error = cannotSay(o)
			}
			p.Rules = append(p.Rules, rf)
			continue
		}
		before, notes := p.overlay.Changes(), len(p.overlay.Notes())
		rf := RuleFix{ID: o.ID}
		if err := o.Rule.Repair(t, p.overlay); err != nil {
			rf.Error = err.Error()
		}
		rf.Files = newPaths(before, p.overlay.Changes())
		rf.Notes = p.overlay.Notes()[notes:]
		if rf.Error == "" && len(rf.Files) == 0 && len(rf.Notes) == 0 {
			rf.Error = cannotSay(o)
		}
		p.Rules = append(p.Rules, rf)
	}
	p.Changes = p.overlay.Changes()
	return p, nil
}

// FixOptions says what Fix repairs, and where.
type FixOptions struct {
	// Open opens the image or tree: to change it (an image's lock taken
	// before anything is read, as Opener does), or afresh to
	// check what was written.
	Open    func(change bool) (*Target, error)
	Catalog []*Rule
	Config  *Config
	Only    []string // repair only these rules; every one when empty
	DryRun  bool     // plan, and change nothing
	// Planned, when set, is shown the plan before anything is written;
	// on a dry run refused says why the real run would be refused.
	Planned func(p *Plan, refused error)
}

// FixResult is what Fix did.
type FixResult struct {
	Name  string // the image or tree, for reports
	Plan  *Plan
	After *Report // check on a fresh view of what was written; nil after a dry run
}

// Fix is vhdprep fix: it plans the repairs, refuses a plan the image
// cannot take before it is shown, applies it, and checks again on a fresh
// view of what was written. A rule the plan changed files for that still
// fails is a repair that did not converge: Fix returns the result with a
// *NotConvergedError naming it.
func Fix(ctx context.Context, opts FixOptions) (*FixResult, error) {
	target, err := opts.Open(!opts.DryRun)
	if err != nil {
		return nil, err
	}
	plan, err := PlanFix(target, opts.Catalog, opts.Config, opts.Only)
	if err != nil {
		target.Close()
		return nil, fmt.Errorf("fix %s: %w", target.Name, err)
	}
	res := &FixResult{Name: target.Name, Plan: plan}
	after, err := plan.write(ctx, target, opts.Open, opts.DryRun, func(refused error) {
		if opts.Planned != nil {
			opts.Planned(plan, refused)
		}
	})
	if after == nil {
		return res, err
	}
	defer after.Close()
	res.After, err = VerifyRepairs(after, opts.Catalog, opts.Config, CommandFix, plan.Claimed())
	return res, err
}

// write writes the plan, made from t, into t (see guest.Write), and opens
// what was written afresh with open, for the check that holds the plan to
// its claims; the target returned is nil after a dry run or a failure.
func (p *Plan) write(ctx context.Context, t *Target, open func(change bool) (*Target, error), dryRun bool, shown func(refused error)) (*Target, error) {
	if err := guest.Write(ctx, t.Guest, p.Changes, p.command(), dryRun, shown); err != nil || dryRun {
		return nil, err
	}
	return open(false)
}

// commandOf is the vhdprep command check found repairs a rule here.
func commandOf(o Outcome) string {
	for _, f := range o.Findings {
		if f.Command != "" {
			return f.Command
		}
	}
	return ""
}

// cannotSay is why vhdprep repairs none of a rule's findings here: the
// first hint check gave, which says what to do instead.
func cannotSay(o Outcome) string {
	for _, f := range o.Findings {
		if f.Fix != "" {
			return f.Fix
		}
	}
	return "vhdprep has nothing to change for what check finds (see vhdprep check)"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// newPaths lists the files after touches that before did not, or that
// changed since.
func newPaths(before, after []write.Change) []string {
	old := map[string]string{}
	for _, c := range before {
		old[c.Path] = string(c.New)
	}
	var out []string
	for _, c := range after {
		if prev, ok := old[c.Path]; !ok || prev != string(c.New) {
			out = append(out, c.Path)
		}
	}
	return out
}
