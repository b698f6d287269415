package wire

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
)

// GoalState is the wire server's goal state document
// (GET /machine/?comp=goalstate): which incarnation the fabric wants, which
// container and role instance this VM is, and where the rest of the goal
// state (configuration documents, certificates) is fetched from.
type GoalState struct {
	Version       string
	Incarnation   string // echoed verbatim in health reports
	ExpectedState string // "Started" in a running VM

	ContainerID    string
	InstanceID     string // the role instance: "<guid>.<name>"
	RoleConfigName string // ConfigName, needed by the HostGAPlugin headers

	// URLs of the other goal-state documents; empty when absent.
	HostingEnvironmentConfig string
	SharedConfig             string
	ExtensionsConfig         string
	FullConfig               string
	Certificates             string
}

// HasRoleInstance reports whether the goal state names a role instance; the
// wire server briefly serves goal states without one while a VM starts, and
// a health report needs it.
func (g *GoalState) HasRoleInstance() bool { return g.InstanceID != "" }

type xmlGoalState struct {
	XMLName     xml.Name `xml:"GoalState"`
	Version     string   `xml:"Version"`
	Incarnation string   `xml:"Incarnation"`
	Machine     struct {
		ExpectedState string `xml:"ExpectedState"`
	} `xml:"Machine"`
	Container struct {
		ContainerID   string `xml:"ContainerId"`
		RoleInstances []struct {
			InstanceID    string `xml:"InstanceId"`
			Configuration struct {
				HostingEnvironmentConfig string `xml:"HostingEnvironmentConfig"`
				SharedConfig             string `xml:"SharedConfig"`
				ExtensionsConfig         string `xml:"ExtensionsConfig"`
				FullConfig               string `xml:"FullConfig"`
				Certificates             string `xml:"Certificates"`
				ConfigName               string `xml:"ConfigName"`
			} `xml:"Configuration"`
		} `xml:"RoleInstanceList>RoleInstance"`
	} `xml:"Container"`
}

// ParseGoalState parses a goal state document. It requires an incarnation
// and a container ID; a missing role instance is not an error here (see
// HasRoleInstance).
func ParseGoalState(doc []byte) (*GoalState, error) {
	var x xmlGoalState
	if err := unmarshal(doc, &x); err != nil {
		return nil, fmt.Errorf("goal state: %w", err)
	}
	g := &GoalState{
		Version:       strings.TrimSpace(x.Version),
		Incarnation:   strings.TrimSpace(x.Incarnation),
		ExpectedState: strings.TrimSpace(x.Machine.ExpectedState),
		ContainerID:   strings.TrimSpace(x.Container.ContainerID),
	}
	if g.Incarnation == "" {
		return nil, fmt.Errorf("goal state: %w: no Incarnation", ErrInvalid)
	}
	if g.ContainerID == "" {
		return nil, fmt.Errorf("goal state: %w: no Container/ContainerId", ErrInvalid)
	}
	// A VM has exactly one role instance; WALinuxAgent also takes the first.
	if len(x.Container.RoleInstances) > 0 {
		ri := x.Container.RoleInstances[0]
		c := ri.Configuration
		g.InstanceID = strings.TrimSpace(ri.InstanceID)
		g.RoleConfigName = strings.TrimSpace(c.ConfigName)
		g.HostingEnvironmentConfig = strings.TrimSpace(c.HostingEnvironmentConfig)
		g.SharedConfig = strings.TrimSpace(c.SharedConfig)
		g.ExtensionsConfig = strings.TrimSpace(c.ExtensionsConfig)
		g.FullConfig = strings.TrimSpace(c.FullConfig)
		g.Certificates = strings.TrimSpace(c.Certificates)
	}
	return g, nil
}

// Versions is the wire server's answer to ?comp=versions.
type Versions struct {
	Preferred string
	Supported []string
}

// Supports reports whether the server speaks protocol version v, as its
// preferred version or one of the supported ones.
func (v *Versions) Supports(version string) bool {
	return v.Preferred == version || slices.Contains(v.Supported, version)
}

// ParseVersions parses the ?comp=versions document.
func ParseVersions(doc []byte) (*Versions, error) {
	var x struct {
		XMLName   xml.Name `xml:"Versions"`
		Preferred string   `xml:"Preferred>Version"`
		Supported []string `xml:"Supported>Version"`
	}
	if err := unmarshal(doc, &x); err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	v := &Versions{Preferred: strings.TrimSpace(x.Preferred)}
	for _, s := range x.Supported {
		v.Supported = append(v.Supported, strings.TrimSpace(s))
	}
	return v, nil
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// unmarshal decodes an XML document, dropping the byte-order mark the wire
// server sometimes sends (WALinuxAgent strips it too).
func unmarshal(doc []byte, v any) error {
	doc = bytes.TrimPrefix(doc, utf8BOM)
	if err := xml.Unmarshal(doc, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}
