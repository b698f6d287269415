package lint

import (
	"fmt"
	"strings"

	"github.com/vhdprep/vhdprep/guest"
)

// NotConvergedError is what a command that changes images returns when a
// rule it claimed to repair still fails on what it wrote: a repair that
// does not converge is a bug, never a silent success.
type NotConvergedError struct {
	Command string // "fix", "deprovision", "agent inject"
	Rules   []Unrepaired
}

// Unrepaired is one rule a command claimed to repair, and what check
// still finds.
type Unrepaired struct {
	ID  string `json:"id"`
	Why string `json:"why"`
}

func (e *NotConvergedError) Error() string {
	var lines []string
	for _, r := range e.Rules {
		lines = append(lines, fmt.Sprintf("%s: vhdprep %s changed the image for it, but check still finds: %s", r.ID, e.Command, r.Why))
	}
	return strings.Join(lines, "\n")
}

// Claimed lists the rules the plan says it repaired: those whose repair
// changed files without an error and left nothing for the user to do (no
// note).
func (p *Plan) Claimed() []string {
	var out []string
	for _, r := range p.Rules {
		if len(r.Files) > 0 && r.Error == "" && len(r.Notes) == 0 {
			out = append(out, r.ID)
		}
	}
	return out
}

// VerifyRepairs checks a fresh view of what a command wrote (after) and
// holds the command to its claims: every rule of claimed that the
// catalog has must pass now. It returns the report, and a
// *NotConvergedError naming each rule that still fails.
func VerifyRepairs(after *Target, catalog []*Rule, cfg *Config, command string, claimed []string) (*Report, error) {
	rep := Run(after, catalog, cfg)
	var bad []Unrepaired
	for _, o := range rep.Outcomes {
		if o.Status != Failed || !contains(claimed, o.ID) {
			continue
		}
		f := o.Findings[0]
		why := f.Message
		if loc := f.Location.String(); loc != "" {
			why += " (" + loc + ")"
		}
		if n := len(o.Findings); n > 1 {
			why += fmt.Sprintf(", and %d more", n-1)
		}
		bad = append(bad, Unrepaired{ID: o.ID, Why: why})
	}
	if len(bad) > 0 {
		return rep, &NotConvergedError{Command: command, Rules: bad}
	}
	return rep, nil
}

// Verify checks on after only the rules a command claimed to repair, as
// VerifyRepairs does: for the commands that print no report afterwards
// (deprovision, agent inject).
func Verify(after *Target, command string, claimed []string) error {
	var rules []*Rule
	for _, r := range Catalog() {
		if contains(claimed, r.ID) {
			rules = append(rules, r)
		}
	}
	_, err := VerifyRepairs(after, rules, nil, command, claimed)
	return err
}

// VerifyGuest is Verify on a guest opened with guest.Opener: what agent
// inject, which writes outside lint, is held to its claims with.
func VerifyGuest(after *guest.Guest, command string, claimed []string) error {
	return Verify(NewTarget(after), command, claimed)
}
