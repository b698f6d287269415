// Package junit writes JUnit XML test reports, the format CI systems
// (Jenkins, GitLab, Azure Pipelines, GitHub's test reporters) show as test
// results: check reports a rule as a test case, prepare a step.
package junit

import (
	"encoding/xml"
	"io"
)

// Suite is a group of test cases; its counts are worked out by Write.
type Suite struct {
	Name  string
	Cases []Case
}

// Case is one test case: passed, unless Failure or Skipped is set.
type Case struct {
	Class, Name string
	Failure     *Failure
	Skipped     *Skipped
}

// Failure says why a case failed: Message in one line, Text in full.
type Failure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// Skipped says why a case did not run.
type Skipped struct {
	Message string `xml:"message,attr"`
}

type xmlSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Suites  []xmlSuite `xml:"testsuite"`
}

type xmlSuite struct {
	Name     string    `xml:"name,attr"`
	Tests    int       `xml:"tests,attr"`
	Failures int       `xml:"failures,attr"`
	Skipped  int       `xml:"skipped,attr"`
	Cases    []xmlCase `xml:"testcase"`
}

type xmlCase struct {
	Class   string   `xml:"classname,attr"`
	Name    string   `xml:"name,attr"`
	Failure *Failure `xml:"failure,omitempty"`
	Skipped *Skipped `xml:"skipped,omitempty"`
}

// Write writes the suites as one JUnit XML document.
func Write(w io.Writer, suites ...Suite) error {
	doc := xmlSuites{Suites: make([]xmlSuite, 0, len(suites))}
	for _, s := range suites {
		x := xmlSuite{Name: s.Name, Tests: len(s.Cases), Cases: make([]xmlCase, 0, len(s.Cases))}
		for _, c := range s.Cases {
			if c.Failure != nil {
				x.Failures++
			}
			if c.Skipped != nil {
				x.Skipped++
			}
			x.Cases = append(x.Cases, xmlCase(c))
		}
		doc.Suites = append(doc.Suites, x)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
