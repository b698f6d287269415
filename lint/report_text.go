package lint

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// ANSI colours for a terminal.
const (
	colourReset  = "\033[0m"
	colourRed    = "\033[31m"
	colourYellow = "\033[33m"
	colourCyan   = "\033[36m"
	colourDim    = "\033[2m"
)

var severityColour = map[Severity]string{Error: colourRed, Warning: colourYellow, Info: colourCyan}

// WriteText prints the report for people: grouped by area in catalog order,
// errors first within an area, each with why and how to fix it. Skipped rules
// are listed with their reason; rules not implemented are counted. colour
// adds ANSI colours (for a terminal).
func WriteText(w io.Writer, r *Report, colour bool) error {
	paint := func(c, s string) string {
		if !colour {
			return s
		}
		return c + s + colourReset
	}
	fmt.Fprintf(w, "vhdprep check %s\n", r.Target)
	for _, area := range Areas {
		var findings []Finding
		var skipped []Outcome
		for _, o := range r.Outcomes {
			if o.Rule.Area != area {
				continue
			}
			findings = append(findings, o.Findings...)
			if o.Status == Skipped {
				skipped = append(skipped, o)
			}
		}
		if len(findings) == 0 && len(skipped) == 0 {
			continue
		}
		sort.SliceStable(findings, func(i, j int) bool { return findings[i].Severity > findings[j].Severity })
		fmt.Fprintf(w, "\n%s\n", area)
		for _, f := range findings {
			rule := r.rule(f.Rule)
			fmt.Fprintf(w, "  %s %s  %s", paint(severityColour[f.Severity], fmt.Sprintf("%-7s", f.Severity)), f.Rule, f.Message)
			if loc := f.Location.String(); loc != "" {
				fmt.Fprintf(w, " (%s)", loc)
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "           %s\n", paint(colourDim, fmt.Sprintf("why: %s [%s]", rule.Why, rule.Source)))
			if fix := fixLine(f); fix != "" {
				fmt.Fprintf(w, "           fix: %s\n", fix)
			}
		}
		for _, o := range skipped {
			fmt.Fprintf(w, "  %s %s  %s\n", paint(colourDim, "skipped"), o.ID, o.Reason)
		}
	}
	s := r.Summary
	fmt.Fprintf(w, "\n%s, %s, %s; %d rules passed, %d skipped, %d not implemented, %d disabled\n",
		plural(s.Errors, "error"), plural(s.Warnings, "warning"), plural(s.Infos, "info"),
		s.Passed, s.Skipped, s.NotImplemented, s.Disabled)
	return nil
}

// fixLine is a finding's hint, and the vhdprep command that repairs it
// on this image where one does.
func fixLine(f Finding) string {
	var parts []string
	if f.Fix != "" && f.Fix != f.Command {
		parts = append(parts, f.Fix)
	}
	if f.Command != "" {
		parts = append(parts, "vhdprep does it: "+f.Command)
	}
	return strings.Join(parts, "; ")
}

func plural(n int, word string) string {
	if n == 1 || word == "info" {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func (r *Report) rule(id string) *Rule {
	for _, o := range r.Outcomes {
		if o.ID == id {
			return o.Rule
		}
	}
	return &Rule{ID: id}
}
