package extconf

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ParseArtifactsProfile reads the InVMArtifactsProfileBlob's JSON and
// reports onHold: extensions wait while it is true. Like WALinuxAgent it
// takes onHold as a boolean or the strings "true"/"false" in any case, and
// false when absent.
func ParseArtifactsProfile(doc []byte) (onHold bool, err error) {
	if len(doc) > MaxDocumentSize {
		return false, fmt.Errorf("artifacts profile of %d bytes, over %d", len(doc), MaxDocumentSize)
	}
	var p struct {
		OnHold any `json:"onHold"`
	}
	if err := json.Unmarshal(doc, &p); err != nil {
		return false, fmt.Errorf("artifacts profile: %v", err)
	}
	switch v := p.OnHold.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("artifacts profile: onHold %v is neither true nor false", p.OnHold)
}
