package lint

import (
	"encoding/json"
	"io"
)

// JSONSchemaVersion is the version of the JSON report's schema (documented
// in the README); it changes only when a field changes meaning or goes away.
const JSONSchemaVersion = 1

type jsonReport struct {
	SchemaVersion int `json:"schema_version"`
	*Report
}

// WriteJSON prints the report as JSON for scripts.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonReport{JSONSchemaVersion, r})
}
