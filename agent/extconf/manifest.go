package extconf

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// Manifest is a plugin version manifest: the versions of a handler and
// where each version's package (a zip) is.
type Manifest struct{ Versions []ManifestVersion }

// ManifestVersion is one version of a handler.
type ManifestVersion struct {
	Version string
	URIs    []string // package (zip) URLs
	// IsInternal marks a version listed under InternalPlugins, which
	// WALinuxAgent chooses only when the goal state asks for it exactly.
	IsInternal bool
	// DisallowMajorVersionUpgrade forbids an automatic upgrade to this
	// version from an older major version.
	DisallowMajorVersionUpgrade bool
}

type xmlManifestPlugin struct {
	Version              string   `xml:"Version"`
	URIs                 []string `xml:"Uris>Uri"`
	DisallowMajorUpgrade string   `xml:"DisallowMajorVersionUpgrade"`
}

type xmlManifest struct {
	XMLName         xml.Name            `xml:"PluginVersionManifest"`
	Plugins         []xmlManifestPlugin `xml:"Plugins>Plugin"`
	InternalPlugins []xmlManifestPlugin `xml:"InternalPlugins>Plugin"`
}

// ParseManifest parses a PluginVersionManifest document. Every version
// must have a version number and at least one package URI.
func ParseManifest(doc []byte) (*Manifest, error) {
	var x xmlManifest
	if err := unmarshal(doc, &x); err != nil {
		return nil, fmt.Errorf("plugin manifest: %v", err)
	}
	m := &Manifest{}
	add := func(list []xmlManifestPlugin, internal bool) error {
		for _, p := range list {
			v := ManifestVersion{
				Version:                     strings.TrimSpace(p.Version),
				IsInternal:                  internal,
				DisallowMajorVersionUpgrade: strings.EqualFold(strings.TrimSpace(p.DisallowMajorUpgrade), "true"),
			}
			if v.Version == "" {
				return fmt.Errorf("plugin manifest: a Plugin has no Version")
			}
			for _, u := range p.URIs {
				if u = strings.TrimSpace(u); u != "" {
					v.URIs = append(v.URIs, u)
				}
			}
			if len(v.URIs) == 0 {
				return fmt.Errorf("plugin manifest: version %s has no package Uri", v.Version)
			}
			m.Versions = append(m.Versions, v)
		}
		return nil
	}
	if err := add(x.Plugins, false); err != nil {
		return nil, err
	}
	if err := add(x.InternalPlugins, true); err != nil {
		return nil, err
	}
	return m, nil
}
