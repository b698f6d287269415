package lint

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Class   string        `xml:"classname,attr"`
	Name    string        `xml:"name,attr"`
	Failure *junitFailure `xml:"failure,omitempty"`
	Skipped *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit prints the report as JUnit XML for CI test reporting: one
// testcase per rule, a failure per rule with findings, skipped for rules
// that were skipped, disabled or not implemented.
func WriteJUnit(w io.Writer, r *Report) error {
	suite := junitSuite{Name: "vhdprep check " + r.Target}
	for _, o := range r.Outcomes {
		c := junitCase{Class: "vhdprep." + strings.ReplaceAll(string(o.Rule.Area), " ", "_"), Name: o.ID + ": " + o.Rule.Title}
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
			c.Failure = &junitFailure{Message: o.Findings[0].Message, Type: worst(o.Findings).String(), Text: text.String()}
			suite.Failures++
		case Skipped, NotImplemented, Disabled:
			c.Skipped = &junitSkipped{Message: string(o.Status) + ": " + o.Reason}
			suite.Skipped++
		}
		suite.Cases = append(suite.Cases, c)
	}
	suite.Tests = len(suite.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{suite}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func worst(fs []Finding) Severity {
	var s Severity
	for _, f := range fs {
		s = max(s, f.Severity)
	}
	return s
}
