package lint

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/vhdprep/vhdprep/internal/shell"
)

// Status is what became of one rule in a run.
type Status string

// Statuses.
const (
	Passed         Status = "pass"
	Failed         Status = "fail"
	Skipped        Status = "skip"
	NotImplemented Status = "not-implemented"
	Disabled       Status = "disabled"
)

// Outcome is one rule's result.
type Outcome struct {
	Rule     *Rule     `json:"-"`
	ID       string    `json:"id"`
	Severity Severity  `json:"severity"`
	Status   Status    `json:"status"`
	Reason   string    `json:"reason,omitempty"` // why skipped, disabled or not implemented
	Findings []Finding `json:"findings"`
}

// Summary counts a report's findings by severity and its rules by status.
type Summary struct {
	Errors         int `json:"errors"`
	Warnings       int `json:"warnings"`
	Infos          int `json:"infos"`
	Passed         int `json:"passed"`
	Failed         int `json:"failed"`
	Skipped        int `json:"skipped"`
	NotImplemented int `json:"not_implemented"`
	Disabled       int `json:"disabled"`
}

// Report is the result of running the rules on one target.
type Report struct {
	Target   string    `json:"image"` // the image, or the --root directory
	Outcomes []Outcome `json:"rules"`
	Summary  Summary   `json:"summary"`
}

// Run applies every rule to t, as cfg configures them. A rule that panics
// is reported as skipped with the panic, so one bug never hides the other
// rules' results.
func Run(t *Target, rules []*Rule, cfg *Config) *Report {
	if cfg == nil {
		cfg = &Config{}
	}
	t.config = cfg
	rep := &Report{Target: t.Name}
	for _, r := range rules {
		o := Outcome{Rule: r, ID: r.ID, Severity: cfg.severity(r), Findings: []Finding{}}
		switch {
		case cfg.disabled(r.ID):
			o.Status, o.Reason = Disabled, "disabled by configuration"
		case r.Check == nil:
			o.Status, o.Reason = NotImplemented, r.NotImplemented
		default:
			findings, err := runCheck(r, t)
			if reason, ok := skipReason(err); ok {
				o.Status, o.Reason = Skipped, reason
			} else if err != nil {
				o.Status, o.Reason = Skipped, fmt.Sprintf("could not decide: %v", err)
			} else {
				o.Status, o.Findings = Passed, complete(t, findings, r, o.Severity, cfg)
			}
			if len(o.Findings) > 0 {
				o.Status = Failed
			}
		}
		rep.Outcomes = append(rep.Outcomes, o)
		rep.Summary.count(o)
	}
	return rep
}

func runCheck(r *Rule, t *Target) (findings []Finding, err error) {
	defer func() {
		if p := recover(); p != nil {
			stack := strings.SplitN(string(debug.Stack()), "\n", 8)
			err = fmt.Errorf("internal error in rule %s: %v (%s); please report it", r.ID, p, strings.TrimSpace(stack[len(stack)-2]))
		}
	}()
	return r.Check(t)
}

// complete fills in what every finding of a rule shares, and how vhdprep
// repairs it on this target.
func complete(t *Target, findings []Finding, r *Rule, sev Severity, cfg *Config) []Finding {
	var command string
	var cannot error
	if len(findings) > 0 && r.Fixable {
		command, cannot = remedy(t, r)
		// fix reads rule options from the same file check did.
		if cfg.Path != "" && strings.HasPrefix(command, "vhdprep fix ") {
			command += " --config " + shell.Quote(cfg.Path)
		}
	}
	for i := range findings {
		f := &findings[i]
		f.Rule = r.ID
		if f.Severity == 0 || cfg.hasSeverity(r.ID) {
			f.Severity = sev
		}
		// A finding with a fix of its own says itself whether its rule's
		// repair covers it; otherwise the rule's fix and fixability hold.
		// Either way only a repair that changes something here makes it
		// fixable.
		claims := f.Fixable
		if f.Fix == "" {
			f.Fix, claims = r.Fix, r.Fixable
		}
		f.Fix = pasteable(t, f.Fix)
		f.Fixable = claims && command != ""
		if f.Fixable {
			f.Command = command
		}
		if r.Repair == nil && r.Fixable && strings.HasPrefix(f.Fix, "vhdprep ") {
			// The rule's fix is another command: the one that works here,
			// or why it does not.
			switch {
			case f.Fixable:
				f.Fix = command
			case cannot != nil:
				f.Fix = fmt.Sprintf("%s cannot do it here: %v", strings.TrimSuffix(r.Fix, " IMAGE"), cannot)
			default:
				f.Fix = ""
			}
		}
	}
	return findings
}

func (s *Summary) count(o Outcome) {
	switch o.Status {
	case Passed:
		s.Passed++
	case Failed:
		s.Failed++
	case Skipped:
		s.Skipped++
	case NotImplemented:
		s.NotImplemented++
	case Disabled:
		s.Disabled++
	}
	for _, f := range o.Findings {
		switch f.Severity {
		case Error:
			s.Errors++
		case Warning:
			s.Warnings++
		case Info:
			s.Infos++
		}
	}
}

// Fails tells whether any finding is at or above severity at: the gate
// behind `check --fail-on`.
func (r *Report) Fails(at Severity) bool {
	for _, o := range r.Outcomes {
		for _, f := range o.Findings {
			if f.Severity >= at {
				return true
			}
		}
	}
	return false
}
