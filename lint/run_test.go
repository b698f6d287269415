package lint

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func testRules() []*Rule {
	return []*Rule{
		{ID: "T001", Area: AreaKernel, Severity: Error, Title: "fails", Why: "w", Source: "s", Fix: "do x",
			Check: func(*Target) ([]Finding, error) {
				return []Finding{{Message: "bad", Location: Location{File: "/etc/default/grub", Line: 3}}}, nil
			}},
		{ID: "T002", Area: AreaKernel, Severity: Warning, Title: "passes", Why: "w", Source: "s",
			Check: func(*Target) ([]Finding, error) { return nil, nil }},
		{ID: "T003", Area: AreaDisk, Severity: Error, Title: "cannot decide", Why: "w", Source: "s",
			Check: func(*Target) ([]Finding, error) { return nil, Skip("root is btrfs") }},
		{ID: "T004", Area: AreaDisk, Severity: Error, Title: "panics", Why: "w", Source: "s",
			Check: func(*Target) ([]Finding, error) { panic("boom") }},
		{ID: "T005", Area: AreaDisk, Severity: Error, Title: "errors", Why: "w", Source: "s",
			Check: func(*Target) ([]Finding, error) { return nil, errors.New("read /etc/fstab: I/O error") }},
		{ID: "T006", Area: AreaDisk, Severity: Info, Title: "todo", NotImplemented: "later"},
	}
}

func TestRunStatusesAndNeverPassesWhatItCouldNotRead(t *testing.T) {
	rep := Run(&Target{Name: "disk.vhd"}, testRules(), nil)
	want := map[string]Status{"T001": Failed, "T002": Passed, "T003": Skipped, "T004": Skipped, "T005": Skipped, "T006": NotImplemented}
	for _, o := range rep.Outcomes {
		if o.Status != want[o.ID] {
			t.Errorf("%s: status %s, want %s (%s)", o.ID, o.Status, want[o.ID], o.Reason)
		}
	}
	if r := rep.Outcomes[3].Reason; !strings.Contains(r, "internal error in rule T004: boom") {
		t.Errorf("panic reason = %q", r)
	}
	f := rep.Outcomes[0].Findings[0]
	if f.Rule != "T001" || f.Severity != Error || f.Fix != "do x" {
		t.Errorf("finding not completed from its rule: %+v", f)
	}
	if s := rep.Summary; s.Errors != 1 || s.Passed != 1 || s.Skipped != 3 || s.NotImplemented != 1 || s.Failed != 1 {
		t.Errorf("summary = %+v", s)
	}
	if !rep.Fails(Error) || !rep.Fails(Warning) {
		t.Error("an error finding does not fail the gate")
	}
}

func TestConfigDisablesAndOverridesSeverity(t *testing.T) {
	cfg := &Config{Disable: []string{"T002"}, Severity: map[string]Severity{"T001": Warning}}
	rep := Run(&Target{Name: "x"}, testRules(), cfg)
	if rep.Outcomes[1].Status != Disabled {
		t.Errorf("T002 not disabled: %s", rep.Outcomes[1].Status)
	}
	if got := rep.Outcomes[0].Findings[0].Severity; got != Warning {
		t.Errorf("T001 finding severity %s, want warning", got)
	}
	if rep.Fails(Error) || !rep.Fails(Warning) {
		t.Error("--fail-on gate wrong after the severity override")
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	cat := Catalog()
	c, err := LoadConfig(write("disable: [KRN003]\nseverity:\n  KRN005: warning\nrules:\n  KRN001:\n    console: ttyAMA0\nfail-on: warning\n"), cat)
	if err != nil {
		t.Fatal(err)
	}
	if !c.disabled("KRN003") || c.Severity["KRN005"] != Warning || c.option("KRN001", "console", "ttyS0") != "ttyAMA0" || c.FailOn != Warning {
		t.Fatalf("config = %+v", c)
	}
	// Prepare's choices.
	if c, err := LoadConfig(write("agent: replace\nremove-users: true\n"), cat); err != nil || c.Agent != AgentReplace || !c.RemoveUsers {
		t.Fatalf("prepare's keys: %+v, %v", c, err)
	}
	// Rule IDs are case-insensitive.
	if c, err := LoadConfig(write("disable: [krn003]\nseverity:\n  Krn005: warning\n"), cat); err != nil || !c.disabled("KRN003") || c.Severity["KRN005"] != Warning {
		t.Fatalf("lower-case IDs: %+v, %v", c, err)
	}
	// A typo names its line and, where one is near, what was meant.
	for bad, want := range map[string]string{
		"disable: [KRN999]\n":                  `:1: unknown rule ID "KRN999"`,
		"# rules\nseverity:\n  KRN01: error\n": `:3: unknown rule ID "KRN01" (did you mean "KRN001"?)`,
		"rules:\n  KRN001:\n    consol: red\n": `:3: rule KRN001 has no option "consol" (did you mean "console"?)`,
		"severity:\n  KRN001: fatal\n":         `:2: KRN001: severity "fatal"`,
		"fail-on: error\ndisabel: [KRN003]\n":  `:2: unknown key "disabel" (did you mean "disable"?); the keys are disable, severity, rules, fail-on, agent, remove-users`,
		"agent: injetc\n":                      `:1: agent: "injetc" is not one of auto, inject, replace, keep (did you mean "inject"?)`,
		"remove-users: maybe\n":                `:1: remove-users wants true or false, not "maybe"`,
		"disable: KRN003\n":                    `:1: disable wants a list of rule IDs`,
	} {
		_, err := LoadConfig(write(bad), cat)
		if err == nil || !strings.Contains(err.Error(), "c.yaml"+want) {
			t.Errorf("config %q: %v, want %q", bad, err, want)
		}
	}
}

// The catalog holds every rule RULES.md lists, each once, each explained.
func TestCatalogMatchesRulesDoc(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Catalog() {
		if seen[r.ID] {
			t.Errorf("rule %s twice", r.ID)
		}
		seen[r.ID] = true
		if r.Title == "" || r.Why == "" || r.Source == "" || r.Area == "" || r.Severity == 0 {
			t.Errorf("rule %s lacks title, why, source, area or severity", r.ID)
		}
		if r.Check == nil && r.NotImplemented == "" {
			t.Errorf("rule %s has neither a check nor a reason it has none", r.ID)
		}
	}
	doc, err := os.ReadFile("../../shared/RULES.md")
	if err != nil {
		t.Skip("../shared/RULES.md not present:", err)
	}
	for _, id := range regexp.MustCompile(`(?m)^\| ([A-Z]{2,3}\d{3}) \|`).FindAllStringSubmatch(string(doc), -1) {
		if !seen[id[1]] {
			t.Errorf("RULES.md lists %s but the catalog does not", id[1])
		}
		delete(seen, id[1])
	}
	for id := range seen {
		t.Errorf("the catalog has %s, which RULES.md does not list", id)
	}
}

func TestReporters(t *testing.T) {
	rep := Run(&Target{Name: "disk.vhd"}, testRules(), nil)

	var text bytes.Buffer
	WriteText(&text, rep, false)
	out := text.String()
	for _, want := range []string{"Kernel command line", "error   T001  bad (/etc/default/grub:3)", "why: w [s]", "fix: do x", "skipped T003  root is btrfs", "1 error, 0 warnings"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\033[") {
		t.Error("colour codes without a terminal")
	}
	text.Reset()
	WriteText(&text, rep, true)
	if !strings.Contains(text.String(), colourRed) {
		t.Error("no colour on a terminal")
	}

	var js bytes.Buffer
	WriteJSON(&js, rep)
	var parsed struct {
		SchemaVersion int `json:"schema_version"`
		Rules         []struct {
			ID       string `json:"id"`
			Status   string `json:"status"`
			Findings []struct {
				Severity string `json:"severity"`
				Location struct {
					File string `json:"file"`
					Line int    `json:"line"`
				} `json:"location"`
			} `json:"findings"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(js.Bytes(), &parsed); err != nil {
		t.Fatal(err)
	}
	if parsed.SchemaVersion != JSONSchemaVersion || parsed.Rules[0].Status != "fail" || parsed.Rules[0].Findings[0].Severity != "error" || parsed.Rules[0].Findings[0].Location.Line != 3 {
		t.Errorf("JSON report = %s", js.String())
	}

	var ju bytes.Buffer
	WriteJUnit(&ju, rep)
	var suites struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Skipped  int `xml:"skipped,attr"`
			Cases    []struct {
				Failure *struct {
					Text string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(ju.Bytes(), &suites); err != nil {
		t.Fatal(err)
	}
	s := suites.Suites[0]
	if s.Tests != 6 || s.Failures != 1 || s.Skipped != 4 || s.Cases[0].Failure == nil || !strings.Contains(s.Cases[0].Failure.Text, "fix: do x") {
		t.Errorf("JUnit = %s", ju.String())
	}

	var sa bytes.Buffer
	WriteSARIF(&sa, rep, "1.0")
	var log sarifLog
	if err := json.Unmarshal(sa.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if log.Version != "2.1.0" || len(run.Tool.Driver.Rules) != 6 || len(run.Results) != 1 {
		t.Fatalf("SARIF = %s", sa.String())
	}
	res := run.Results[0]
	if res.RuleID != "T001" || res.Level != "error" || run.Tool.Driver.Rules[res.RuleIndex].ID != "T001" ||
		res.Locations[0].Logical[0].FullyQualifiedName != "/etc/default/grub:3" {
		t.Errorf("SARIF result = %+v", res)
	}
}
