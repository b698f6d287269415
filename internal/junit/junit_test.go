package junit

import (
	"bytes"
	"encoding/xml"
	"testing"
)

func TestWriteCounts(t *testing.T) {
	var b bytes.Buffer
	err := Write(&b,
		Suite{Name: "a", Cases: []Case{
			{Class: "c", Name: "passes"},
			{Class: "c", Name: "fails", Failure: &Failure{Message: "m", Type: "error", Text: "t & <x>"}},
			{Class: "c", Name: "skips", Skipped: &Skipped{Message: "why"}},
		}},
		Suite{Name: "empty"})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Text string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(doc.Suites) != 2 {
		t.Fatalf("suites = %d:\n%s", len(doc.Suites), b.String())
	}
	s := doc.Suites[0]
	if s.Tests != 3 || s.Failures != 1 || s.Skipped != 1 || s.Cases[1].Failure == nil || s.Cases[1].Failure.Text != "t & <x>" {
		t.Errorf("suite a = %+v\n%s", s, b.String())
	}
	if e := doc.Suites[1]; e.Name != "empty" || e.Tests != 0 {
		t.Errorf("suite empty = %+v", e)
	}
}
