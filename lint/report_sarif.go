package lint

import (
	"encoding/json"
	"io"
)

// SARIF 2.1.0, the format code-scanning UIs read.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	toolURI      = "https://github.com/vhdprep/vhdprep"
)

type sarifLog struct {
	Version string     `json:"version"`
	Schema  string     `json:"$schema"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID               string          `json:"id"`
	ShortDescription sarifText       `json:"shortDescription"`
	FullDescription  sarifText       `json:"fullDescription"`
	Help             sarifText       `json:"help"`
	Default          sarifLevel      `json:"defaultConfiguration"`
	Properties       sarifProperties `json:"properties"`
}

type sarifLevel struct {
	Level string `json:"level"`
}

type sarifProperties struct {
	Tags []string `json:"tags"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	Physical sarifPhysical     `json:"physicalLocation"`
	Logical  []sarifLogicalLoc `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	Artifact sarifArtifact `json:"artifactLocation"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifLogicalLoc struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

var sarifLevels = map[Severity]string{Error: "error", Warning: "warning", Info: "note"}

// WriteSARIF prints the report as SARIF 2.1.0. The artifact of every result
// is the image file; where a finding is inside the image, the path in the
// guest (with its line) is a logical location: a region would wrongly
// point into the image file itself.
func WriteSARIF(w io.Writer, r *Report, version string) error {
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{Name: "vhdprep", Version: version, InformationURI: toolURI}}, Results: []sarifResult{}}
	for i, o := range r.Outcomes {
		rule := o.Rule
		help := rule.Why + " [" + rule.Source + "]"
		if fix := rule.CatalogFix(); fix != "" {
			help += " Fix: " + fix
		}
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
			ID:               rule.ID,
			ShortDescription: sarifText{rule.Title},
			FullDescription:  sarifText{rule.Title + ": " + rule.Why},
			Help:             sarifText{help},
			Default:          sarifLevel{sarifLevels[o.Severity]},
			Properties:       sarifProperties{Tags: []string{string(rule.Area)}},
		})
		for _, f := range o.Findings {
			loc := sarifLocation{Physical: sarifPhysical{Artifact: sarifArtifact{URI: r.Target}}}
			if where := f.Location.String(); where != "" {
				loc.Logical = []sarifLogicalLoc{{FullyQualifiedName: where, Kind: "guestFile"}}
			}
			msg := f.Message
			if fix := fixLine(f); fix != "" {
				msg += ". Fix: " + fix
			}
			run.Results = append(run.Results, sarifResult{RuleID: f.Rule, RuleIndex: i, Level: sarifLevels[f.Severity], Message: sarifText{msg}, Locations: []sarifLocation{loc}})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Version: sarifVersion, Schema: sarifSchema, Runs: []sarifRun{run}})
}
