package lint

import (
	"fmt"
	"io"
	"strings"

	"github.com/vhdprep/vhdprep/internal/junit"
)

// WriteJUnit prints the report as JUnit XML for CI test reporting: one
// testcase per rule, a failure per rule with findings, skipped for rules
// that were skipped, disabled or not implemented.
func WriteJUnit(w io.Writer, r *Report) error {
	return junit.Write(w, JUnitSuite(r))
}

// JUnitSuite is the report as one JUnit test suite, for reports that hold
// a check among other things (prepare's).
func JUnitSuite(r *Report) junit.Suite {
	suite := junit.Suite{Name: "vhdprep check " + r.Target}
	for _, o := range r.Outcomes {
		c := junit.Case{Class: "vhdprep." + strings.ReplaceAll(string(o.Rule.Area), " ", "_"), Name: o.ID + ": " + o.Rule.Title}
		switch o.Status {
		case Failed:
			var text strings.Builder
			for _, f := range o.Findings {
				fmt.Fprintf(&text, "%s: %s", f.Severity, f.Message)
				if loc := f.Location.String(); loc != "" {
					fmt.Fprintf(&text, " (%s)", loc)
				}
				if fix := fixLine(f); fix != "" {
					fmt.Fprintf(&text, "\n  fix: %s", fix)
				}
				text.WriteString("\n")
			}
			c.Failure = &junit.Failure{Message: o.Findings[0].Message, Type: worst(o.Findings).String(), Text: text.String()}
		case Skipped, NotImplemented, Disabled:
			c.Skipped = &junit.Skipped{Message: string(o.Status) + ": " + o.Reason}
		}
		suite.Cases = append(suite.Cases, c)
	}
	return suite
}

func worst(fs []Finding) Severity {
	var s Severity
	for _, f := range fs {
		s = max(s, f.Severity)
	}
	return s
}
