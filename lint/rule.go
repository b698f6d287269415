// Package lint is the rule engine behind `vhdprep check`: every rule of the
// catalog (../shared/RULES.md) with its ID, default severity, rationale and
// source, the check that applies it to an image, and the reporters that
// print the result for people and for CI.
package lint

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vhdprep/vhdprep/rootfs/write"
)

// Severity is how much a finding matters. The zero value means "the rule's
// severity" in a Finding.
type Severity int

// Severities, in ascending order.
const (
	Info Severity = iota + 1
	Warning
	Error
)

var severityNames = map[Severity]string{Info: "info", Warning: "warning", Error: "error"}

func (s Severity) String() string {
	if n, ok := severityNames[s]; ok {
		return n
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity reads "error", "warning" (or "warn") or "info".
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(s) {
	case "error":
		return Error, nil
	case "warning", "warn":
		return Warning, nil
	case "info":
		return Info, nil
	}
	return 0, fmt.Errorf("severity %q: use error, warning or info", s)
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// Area groups rules in reports, in the catalog's order.
type Area string

// The catalog's areas, in report order.
const (
	AreaContainer  Area = "Container"
	AreaDisk       Area = "Disk layout"
	AreaKernel     Area = "Kernel command line"
	AreaDrivers    Area = "Drivers and initramfs"
	AreaStorage    Area = "Swap and storage"
	AreaAgent      Area = "Provisioning and extensions"
	AreaGeneralize Area = "SSH, accounts and generalization"
)

// Areas lists the areas in report order.
var Areas = []Area{AreaContainer, AreaDisk, AreaKernel, AreaDrivers, AreaStorage, AreaAgent, AreaGeneralize}

// Rule is one entry of the catalog.
type Rule struct {
	ID       string
	Area     Area
	Severity Severity
	// Title states the condition the image must meet.
	Title string
	// Why is one line of rationale, and Source where it comes from
	// (AZ-GEN, LISA, MKT, ...).
	Why    string
	Source string
	// Fix says how to repair a finding (IMAGE stands for the image in a
	// vhdprep command); Fixable tells whether `vhdprep fix` (or the
	// command Fix names) can do it on some images: on a given one, its
	// repair decides (see remedy).
	Fix     string
	Fixable bool
	// Options are the settings a config file may give the rule, with
	// what each means.
	Options map[string]string
	// Check applies the rule. A rule whose Check is nil is listed as not
	// implemented, with NotImplemented as the reason.
	Check          func(*Target) ([]Finding, error)
	NotImplemented string
	// Repair makes the changes that fix the rule's findings in an overlay
	// of the guest's files; nil where vhdprep fix cannot do it yet.
	Repair func(*Target, *Overlay) error
}

// Overlay is what a repair edits: the guest's files as the repairs before
// it left them, the session fix, deprovision and agent inject write
// through.
type Overlay = write.Overlay

// Finding is one thing a rule found wrong.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Location Location `json:"location"`
	Fix      string   `json:"fix,omitempty"`
	// Fixable tells that a vhdprep command repairs the finding on this
	// image, and Command is that command, ready to paste.
	Fixable bool   `json:"fixable"`
	Command string `json:"command,omitempty"`
}

// Location says where inside the image a finding is.
type Location struct {
	File   string `json:"file,omitempty"` // path inside the guest
	Line   int    `json:"line,omitempty"`
	Volume string `json:"volume,omitempty"` // partition or logical volume
	Kernel string `json:"kernel,omitempty"` // kernel version
}

func (l Location) String() string {
	var parts []string
	if l.File != "" {
		if l.Line > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", l.File, l.Line))
		} else {
			parts = append(parts, l.File)
		}
	}
	if l.Volume != "" {
		parts = append(parts, "volume "+l.Volume)
	}
	if l.Kernel != "" {
		parts = append(parts, "kernel "+l.Kernel)
	}
	return strings.Join(parts, ", ")
}

// errSkip marks a rule that could not decide.
type errSkip struct{ reason string }

func (e errSkip) Error() string { return e.reason }

// Skip is what a check returns when it cannot decide (a file it needs is
// unreadable, the filesystem is not supported): the rule is reported as
// skipped with the reason, never as passed.
func Skip(format string, args ...any) error { return errSkip{fmt.Sprintf(format, args...)} }

func skipReason(err error) (string, bool) {
	var s errSkip
	if errors.As(err, &s) {
		return s.reason, true
	}
	return "", false
}
