// Package extconf parses the wire server's ExtensionsConfig document and the
// plugin manifests it points to, as WALinuxAgent does
// (azurelinuxagent/common/protocol/extensions_goal_state_from_extensions_config.py).
package extconf

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Handler and extension states.
const (
	StateEnabled   = "enabled"
	StateDisabled  = "disabled"
	StateUninstall = "uninstall"
)

// Status blob types.
const (
	BlockBlob = "BlockBlob"
	PageBlob  = "PageBlob"
)

// MaxDocumentSize bounds the documents this package parses.
const MaxDocumentSize = 8 << 20

var (
	// ErrInvalid marks a document that cannot be used at all.
	ErrInvalid = errors.New("invalid ExtensionsConfig")
	// ErrInvalidPlugin marks a plugin WALinuxAgent would fail on its own,
	// reporting an error status for that handler while processing others.
	ErrInvalidPlugin = errors.New("invalid plugin")
)

// Config is an ExtensionsConfig document.
type Config struct {
	Plugins                  []Plugin
	StatusUploadBlob         string // SAS URL; "" when absent
	StatusBlobType           string // BlockBlob or PageBlob (BlockBlob when absent or unknown, as WALinuxAgent assumes)
	InVMArtifactsProfileBlob string // "" when absent
	RequiredFeatures         []Feature
}

// Feature is a RequiredFeature the fabric expects the agent to support.
type Feature struct{ Name, Value string }

// Plugin is an extension handler.
type Plugin struct {
	Name, Version string
	State         string   // StateEnabled, StateDisabled or StateUninstall
	Locations     []string // manifest URLs: location, failoverlocation, additionalLocations, in order
	IsMultiConfig bool
	// Extensions are the handler's runtime settings: one per handlerSettings
	// for a single-config handler (none when PluginSettings has none), one
	// per ExtensionRuntimeSettings for a multi-config handler.
	Extensions []Extension
	// Err is why this handler cannot run (an ErrInvalidPlugin); the others
	// still can. Report it as the handler's status.
	Err error
}

// Extension is one set of runtime settings.
type Extension struct {
	Name           string // "" for single-config handlers
	SeqNo          int
	State          string // multi-config per-extension state; "" otherwise (use Plugin.State)
	DependsOnLevel int
	// PublicSettings is the publicSettings JSON value; nil when absent.
	PublicSettings json.RawMessage
	// ProtectedSettings is a base64 CMS envelope, "" when absent. Secret:
	// never log it.
	ProtectedSettings               string
	ProtectedSettingsCertThumbprint string
}

type xmlConfig struct {
	XMLName          xml.Name            `xml:"Extensions"`
	Plugins          []xmlPlugin         `xml:"Plugins>Plugin"`
	PluginSettings   []xmlPluginSettings `xml:"PluginSettings>Plugin"`
	RequiredFeatures []struct {
		Name  string `xml:"Name"`
		Value string `xml:"Value"`
	} `xml:"RequiredFeatures>RequiredFeature"`
	StatusUploadBlob *struct {
		Type string `xml:"statusBlobType,attr"`
		URL  string `xml:",chardata"`
	} `xml:"StatusUploadBlob"`
	InVMArtifactsProfileBlob string `xml:"InVMArtifactsProfileBlob"`
}

type xmlPlugin struct {
	Name                string   `xml:"name,attr"`
	Version             string   `xml:"version,attr"`
	State               string   `xml:"state,attr"`
	Location            string   `xml:"location,attr"`
	FailoverLocation    string   `xml:"failoverlocation,attr"`
	AdditionalLocations []string `xml:"additionalLocations>additionalLocation"`
}

type xmlPluginSettings struct {
	Name      string `xml:"name,attr"`
	Version   string `xml:"version,attr"`
	DependsOn []struct {
		Level string `xml:"dependencyLevel,attr"`
		Name  string `xml:"name,attr"`
	} `xml:"DependsOn"`
	RuntimeSettings          []xmlSettings `xml:"RuntimeSettings"`
	ExtensionRuntimeSettings []xmlSettings `xml:"ExtensionRuntimeSettings"`
}

type xmlSettings struct {
	SeqNo string `xml:"seqNo,attr"`
	Name  string `xml:"name,attr"`
	State string `xml:"state,attr"`
	JSON  string `xml:",chardata"`
}

// Parse parses an ExtensionsConfig document. A document that cannot be used
// at all is an ErrInvalid error and a nil Config. When only some plugins are
// invalid, Parse returns the Config with those plugins' Err set and an
// error wrapping ErrInvalidPlugin that names them, so a caller can report
// them and still run the others, as WALinuxAgent does.
func Parse(doc []byte) (*Config, error) {
	var x xmlConfig
	if err := unmarshal(doc, &x); err != nil {
		return nil, fmt.Errorf("ExtensionsConfig: %w: %v", ErrInvalid, err)
	}
	c := &Config{
		StatusBlobType:           BlockBlob,
		InVMArtifactsProfileBlob: strings.TrimSpace(x.InVMArtifactsProfileBlob),
	}
	if b := x.StatusUploadBlob; b != nil {
		c.StatusUploadBlob = strings.TrimSpace(b.URL)
		if t := strings.TrimSpace(b.Type); t == PageBlob {
			c.StatusBlobType = PageBlob
		}
	}
	for _, f := range x.RequiredFeatures {
		c.RequiredFeatures = append(c.RequiredFeatures, Feature{Name: strings.TrimSpace(f.Name), Value: strings.TrimSpace(f.Value)})
	}
	// Settings belong to the plugin of the same name, whatever its case.
	byName := map[string][]xmlPluginSettings{}
	for _, ps := range x.PluginSettings {
		k := strings.ToLower(ps.Name)
		byName[k] = append(byName[k], ps)
	}
	var errs []error
	for _, xp := range x.Plugins {
		p := parsePlugin(xp, byName[strings.ToLower(xp.Name)])
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
		c.Plugins = append(c.Plugins, p)
	}
	return c, errors.Join(errs...)
}

// parsePlugin reads a plugin and the PluginSettings of its name.
func parsePlugin(xp xmlPlugin, mine []xmlPluginSettings) Plugin {
	p := Plugin{Name: xp.Name, Version: xp.Version, State: xp.State}
	for _, l := range append([]string{xp.Location, xp.FailoverLocation}, xp.AdditionalLocations...) {
		if l = strings.TrimSpace(l); l != "" {
			p.Locations = append(p.Locations, l)
		}
	}
	fail := func(format string, a ...any) Plugin {
		p.Err = fmt.Errorf("ExtensionsConfig plugin %q version %q: %w: %s", p.Name, p.Version, ErrInvalidPlugin, fmt.Sprintf(format, a...))
		p.Extensions = nil
		return p
	}
	switch {
	case p.Name == "":
		return fail("no name")
	case p.Version == "":
		return fail("no version")
	case p.State == "":
		return fail("no state")
	case !pathSafe(p.Name):
		return fail("its name cannot be a directory name (it holds a /, a NUL, or is . or ..)")
	case !pathSafe(p.Version):
		return fail("its version cannot be part of a directory name (it holds a /, a NUL, or is . or ..)")
	}

	if len(mine) == 0 {
		return p
	}
	// The settings must name the plugin's version.
	var versions []string
	for _, s := range mine {
		versions = append(versions, s.Version)
	}
	for _, v := range versions {
		if v != p.Version {
			return fail("PluginSettings name versions %s; the plugin's version is expected", strings.Join(versions, ", "))
		}
	}
	if len(mine) > 1 {
		return fail("%d PluginSettings for this version; one is expected", len(mine))
	}
	ps := mine[0]
	switch {
	case len(ps.RuntimeSettings) > 0 && len(ps.ExtensionRuntimeSettings) > 0:
		return fail("both RuntimeSettings and ExtensionRuntimeSettings")
	case len(ps.RuntimeSettings) > 1:
		return fail("%d RuntimeSettings; one is expected", len(ps.RuntimeSettings))
	case len(ps.RuntimeSettings) == 1:
		if len(ps.DependsOn) > 1 {
			return fail("%d DependsOn for a single-config handler; one is expected", len(ps.DependsOn))
		}
		level := 0
		if len(ps.DependsOn) == 1 {
			level = dependencyLevel(ps.DependsOn[0].Level)
		}
		exts, err := parseSettings(ps.RuntimeSettings[0], "", "", level)
		if err != nil {
			return fail("%v", err)
		}
		p.Extensions = exts
	case len(ps.ExtensionRuntimeSettings) > 0:
		p.IsMultiConfig = true
		levels := map[string]int{}
		for _, d := range ps.DependsOn {
			if d.Name == "" {
				return fail("a DependsOn of a multi-config handler names no extension")
			}
			levels[d.Name] = dependencyLevel(d.Level)
		}
		for _, s := range ps.ExtensionRuntimeSettings {
			if s.Name == "" {
				return fail("an ExtensionRuntimeSettings has no name")
			}
			state := strings.ToLower(s.State)
			if state == "" {
				state = StateEnabled
			}
			exts, err := parseSettings(s, s.Name, state, levels[s.Name])
			if err != nil {
				return fail("%v", err)
			}
			p.Extensions = append(p.Extensions, exts...)
		}
	}
	return p
}

// pathSafe tells whether a name from the goal state can be one path
// component: handler names and versions become directory names under
// /var/lib/waagent and /var/log/azure, and must not lead out of them.
// (Extension names of multi-config handlers are checked by the agent,
// which fails that extension alone.)
func pathSafe(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// dependencyLevel is 0 when the attribute is absent or not a number, as
// WALinuxAgent reads it.
func dependencyLevel(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return n
}

type runtimeSettings struct {
	RuntimeSettings *[]struct {
		HandlerSettings *struct {
			PublicSettings    json.RawMessage `json:"publicSettings"`
			ProtectedSettings *string         `json:"protectedSettings"`
			Thumbprint        *string         `json:"protectedSettingsCertThumbprint"`
		} `json:"handlerSettings"`
	} `json:"runtimeSettings"`
}

// parseSettings reads one RuntimeSettings or ExtensionRuntimeSettings
// element. Settings that are not JSON give one extension without settings
// (WALinuxAgent does so, so that the seqNo is still reported on).
func parseSettings(s xmlSettings, name, state string, level int) ([]Extension, error) {
	label := "RuntimeSettings"
	if name != "" {
		label = fmt.Sprintf("ExtensionRuntimeSettings %q", name)
	}
	if strings.TrimSpace(s.SeqNo) == "" {
		return nil, fmt.Errorf("%s has no seqNo", label)
	}
	seq, err := strconv.Atoi(strings.TrimSpace(s.SeqNo))
	if err != nil || seq < 0 {
		return nil, fmt.Errorf("%s: seqNo %q is not a sequence number", label, s.SeqNo)
	}
	bare := Extension{Name: name, SeqNo: seq, State: state, DependsOnLevel: level}
	var rs runtimeSettings
	if err := json.Unmarshal([]byte(s.JSON), &rs); err != nil {
		return []Extension{bare}, nil
	}
	if rs.RuntimeSettings == nil {
		return nil, fmt.Errorf("%s: the JSON has no runtimeSettings", label)
	}
	var out []Extension
	for _, r := range *rs.RuntimeSettings {
		h := r.HandlerSettings
		if h == nil {
			return nil, fmt.Errorf("%s: a runtimeSettings entry has no handlerSettings", label)
		}
		e := bare
		if len(h.PublicSettings) > 0 && !bytes.Equal(h.PublicSettings, []byte("null")) {
			e.PublicSettings = h.PublicSettings
		}
		if h.ProtectedSettings != nil {
			e.ProtectedSettings = *h.ProtectedSettings
		}
		if h.Thumbprint != nil {
			e.ProtectedSettingsCertThumbprint = *h.Thumbprint
		}
		out = append(out, e)
	}
	return out, nil
}

// unmarshal decodes one XML document of at most MaxDocumentSize bytes.
func unmarshal(doc []byte, v any) error {
	if len(doc) > MaxDocumentSize {
		return fmt.Errorf("document of %d bytes, over %d", len(doc), MaxDocumentSize)
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	// The wire server declares utf-8 (and sometimes utf-16 in older hosts
	// that WALinuxAgent also does not read); accept only UTF-8 aliases.
	d.CharsetReader = func(charset string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "utf8", "us-ascii":
			return r, nil
		}
		return nil, fmt.Errorf("encoding %q is not UTF-8", charset)
	}
	return d.Decode(v)
}
