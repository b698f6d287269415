// Package extension runs Azure VM extension handlers the way WALinuxAgent
// does (azurelinuxagent/ga/exthandlers.py): it downloads and unpacks each
// handler into <lib>/<Name>-<Version>/, writes its environment and
// settings, runs its HandlerManifest.json commands under WALinuxAgent's
// states and time limits, and reads the status files the handler writes.
package extension

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// maxManifestSize bounds HandlerManifest.json; real ones are a few hundred bytes.
const maxManifestSize = 64 << 10

// Update modes of HandlerManifest.json.
const (
	UpdateWithInstall    = "UpdateWithInstall"
	UpdateWithoutInstall = "UpdateWithoutInstall"
)

// HandlerManifest is the handlerManifest object of HandlerManifest.json.
type HandlerManifest struct {
	Install                    string `json:"installCommand"`
	Uninstall                  string `json:"uninstallCommand"`
	Update                     string `json:"updateCommand"`
	Enable                     string `json:"enableCommand"`
	Disable                    string `json:"disableCommand"`
	RebootAfterInstall         bool   `json:"rebootAfterInstall"`
	ReportHeartbeat            bool   `json:"reportHeartbeat"`
	UpdateMode                 string `json:"updateMode"`
	ContinueOnUpdateFailure    bool   `json:"continueOnUpdateFailure"`
	SupportsMultipleExtensions bool   `json:"supportsMultipleExtensions"`
}

// UpdateWithInstall reports whether an update also runs install, which
// WALinuxAgent does unless updateMode says UpdateWithoutInstall.
func (m *HandlerManifest) updateWithInstall() bool {
	return m.UpdateMode != UpdateWithoutInstall
}

// ParseHandlerManifest parses HandlerManifest.json: a list whose first
// element holds handlerManifest, as WALinuxAgent reads it. Booleans may be
// JSON booleans or the strings "true"/"false", which published handlers use.
func ParseHandlerManifest(doc []byte) (*HandlerManifest, error) {
	if len(doc) > maxManifestSize {
		return nil, fmt.Errorf("HandlerManifest.json: %d bytes, more than %d", len(doc), maxManifestSize)
	}
	var list []struct {
		HandlerManifest map[string]json.RawMessage `json:"handlerManifest"`
	}
	if err := json.Unmarshal(doc, &list); err != nil {
		return nil, fmt.Errorf("HandlerManifest.json: %v; the handler package is broken, ask its publisher", err)
	}
	if len(list) == 0 || list[0].HandlerManifest == nil {
		return nil, errors.New("HandlerManifest.json: no handlerManifest; the handler package is broken, ask its publisher")
	}
	raw := list[0].HandlerManifest
	m := &HandlerManifest{}
	for key, dst := range map[string]*string{
		"installCommand": &m.Install, "uninstallCommand": &m.Uninstall, "updateCommand": &m.Update,
		"enableCommand": &m.Enable, "disableCommand": &m.Disable, "updateMode": &m.UpdateMode,
	} {
		if v, ok := raw[key]; ok && json.Unmarshal(v, dst) != nil {
			return nil, fmt.Errorf("HandlerManifest.json: %s is not a string", key)
		}
	}
	for key, dst := range map[string]*bool{
		"rebootAfterInstall": &m.RebootAfterInstall, "reportHeartbeat": &m.ReportHeartbeat,
		"continueOnUpdateFailure": &m.ContinueOnUpdateFailure, "supportsMultipleExtensions": &m.SupportsMultipleExtensions,
	} {
		if v, ok := raw[key]; ok {
			*dst = parseBool(v)
		}
	}
	if m.Enable == "" {
		return nil, errors.New("HandlerManifest.json: no enableCommand; the handler package is broken, ask its publisher")
	}
	return m, nil
}

// parseBool reads true or "true" (any case) as true, anything else as false.
func parseBool(v json.RawMessage) bool {
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return b
	}
	var s string
	return json.Unmarshal(v, &s) == nil && strings.EqualFold(s, "true")
}
