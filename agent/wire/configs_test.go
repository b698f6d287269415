package wire

import (
	"context"
	"encoding/xml"
	"fmt"
)

// The goal state's HostingEnvironmentConfig and SharedConfig, which
// WALinuxAgent reads and the vhdprep agent does not: the tests read them to
// hold the wire server simulator's documents to the real ones' shape.

// HostingEnv is the HostingEnvironmentConfig document: the names the fabric
// gives this VM.
type HostingEnv struct {
	Incarnation    string // the document's goalStateIncarnation
	VMName         string // Incarnation/@instance
	RoleName       string // Role/@name
	DeploymentName string // Deployment/@name
	// StoredCertificates lists the certificates the VM is given, by
	// thumbprint ("sha1:..." as the document spells it).
	StoredCertificates []StoredCertificate
}

// StoredCertificate names one certificate in HostingEnvironmentConfig.
type StoredCertificate struct {
	Name          string
	CertificateID string
	StoreName     string
}

type xmlHostingEnv struct {
	XMLName     xml.Name `xml:"HostingEnvironmentConfig"`
	Incarnation string   `xml:"goalStateIncarnation,attr"`
	Stored      []struct {
		Name          string `xml:"name,attr"`
		CertificateID string `xml:"certificateId,attr"`
		StoreName     string `xml:"storeName,attr"`
	} `xml:"StoredCertificates>StoredCertificate"`
	Deployment struct {
		Name string `xml:"name,attr"`
	} `xml:"Deployment"`
	Inc struct {
		Instance string `xml:"instance,attr"`
	} `xml:"Incarnation"`
	Role struct {
		Name string `xml:"name,attr"`
	} `xml:"Role"`
}

// ParseHostingEnv parses a HostingEnvironmentConfig document.
func ParseHostingEnv(doc []byte) (*HostingEnv, error) {
	var x xmlHostingEnv
	if err := unmarshal(doc, &x); err != nil {
		return nil, fmt.Errorf("hosting environment config: %w", err)
	}
	h := &HostingEnv{
		Incarnation:    x.Incarnation,
		VMName:         x.Inc.Instance,
		RoleName:       x.Role.Name,
		DeploymentName: x.Deployment.Name,
	}
	for _, s := range x.Stored {
		h.StoredCertificates = append(h.StoredCertificates, StoredCertificate(s))
	}
	return h, nil
}

// SharedConfig is the SharedConfig document. WALinuxAgent keeps it as text
// for other tools (it saves it as /var/lib/waagent/SharedConfig.xml); the
// parsed fields are the ones a guest uses.
type SharedConfig struct {
	Incarnation    string // the document's goalStateIncarnation
	DeploymentName string
	RoleName       string
	VMName         string // Incarnation/@instance
	Instances      []Instance
}

// Instance is one role instance in SharedConfig with its private address.
type Instance struct {
	ID      string
	Address string
}

type xmlSharedConfig struct {
	XMLName     xml.Name `xml:"SharedConfig"`
	Incarnation string   `xml:"goalStateIncarnation,attr"`
	Deployment  struct {
		Name string `xml:"name,attr"`
	} `xml:"Deployment"`
	Inc struct {
		Instance string `xml:"instance,attr"`
	} `xml:"Incarnation"`
	Role struct {
		Name string `xml:"name,attr"`
	} `xml:"Role"`
	Instances []struct {
		ID      string `xml:"id,attr"`
		Address string `xml:"address,attr"`
	} `xml:"Instances>Instance"`
}

// ParseSharedConfig parses a SharedConfig document.
func ParseSharedConfig(doc []byte) (*SharedConfig, error) {
	var x xmlSharedConfig
	if err := unmarshal(doc, &x); err != nil {
		return nil, fmt.Errorf("shared config: %w", err)
	}
	s := &SharedConfig{
		Incarnation:    x.Incarnation,
		DeploymentName: x.Deployment.Name,
		RoleName:       x.Role.Name,
		VMName:         x.Inc.Instance,
	}
	for _, i := range x.Instances {
		s.Instances = append(s.Instances, Instance(i))
	}
	return s, nil
}

// HostingEnv fetches and parses g's HostingEnvironmentConfig.
func (c *Client) HostingEnv(ctx context.Context, g *GoalState) (*HostingEnv, error) {
	if g.HostingEnvironmentConfig == "" {
		return nil, fmt.Errorf("%w: goal state incarnation %s has no HostingEnvironmentConfig", ErrInvalid, g.Incarnation)
	}
	doc, err := c.Fetch(ctx, g.HostingEnvironmentConfig)
	if err != nil {
		return nil, err
	}
	return ParseHostingEnv(doc)
}

// SharedConfig fetches g's SharedConfig; it returns the document too, which
// WALinuxAgent saves for other tools.
func (c *Client) SharedConfig(ctx context.Context, g *GoalState) (*SharedConfig, []byte, error) {
	if g.SharedConfig == "" {
		return nil, nil, fmt.Errorf("%w: goal state incarnation %s has no SharedConfig", ErrInvalid, g.Incarnation)
	}
	doc, err := c.Fetch(ctx, g.SharedConfig)
	if err != nil {
		return nil, nil, err
	}
	s, err := ParseSharedConfig(doc)
	return s, doc, err
}

// HostPlugin returns the HostGAPlugin's host:port.
func (c *Client) HostPlugin() string { return c.hostPlugin }
