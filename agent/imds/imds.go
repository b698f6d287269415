// Package imds reads the Azure Instance Metadata Service
// (http://169.254.169.254/metadata/instance): the compute section that
// provisioning can use when the provisioning media is missing (VM name,
// admin user, SSH public keys) and the VM ID.
package imds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	// DefaultEndpoint is IMDS's link-local address.
	DefaultEndpoint = "169.254.169.254"
	// APIVersion is the first version with osProfile and publicKeys.
	APIVersion = "2021-02-01"
	// MaxSize bounds the answer read; instance metadata is a few kilobytes.
	MaxSize = 1 << 20
)

// ErrInvalid marks an answer that is not the instance metadata document.
var ErrInvalid = errors.New("invalid instance metadata")

// Instance is the part of the instance metadata document a guest agent uses.
type Instance struct {
	Compute Compute `json:"compute"`
}

// Compute is the compute section.
type Compute struct {
	Name              string      `json:"name"`
	VMID              string      `json:"vmId"`
	Location          string      `json:"location"`
	VMSize            string      `json:"vmSize"`
	OSType            string      `json:"osType"`
	ResourceGroupName string      `json:"resourceGroupName"`
	SubscriptionID    string      `json:"subscriptionId"`
	OSProfile         OSProfile   `json:"osProfile"`
	PublicKeys        []PublicKey `json:"publicKeys"`
}

// OSProfile is compute.osProfile. IMDS spells the boolean as a string.
type OSProfile struct {
	AdminUsername                 string `json:"adminUsername"`
	ComputerName                  string `json:"computerName"`
	DisablePasswordAuthentication string `json:"disablePasswordAuthentication"`
}

// PublicKey is one of compute.publicKeys.
type PublicKey struct {
	KeyData string `json:"keyData"`
	Path    string `json:"path"`
}

// HostName is the name the VM should take: osProfile.computerName, else the
// VM's name.
func (c *Compute) HostName() string {
	if c.OSProfile.ComputerName != "" {
		return c.OSProfile.ComputerName
	}
	return c.Name
}

// PasswordAuthenticationDisabled reports osProfile's setting; IMDS leaves it
// empty for images without an osProfile, and then password logins stay
// off, since IMDS never delivers a password.
func (c *Compute) PasswordAuthenticationDisabled() bool {
	return !strings.EqualFold(c.OSProfile.DisablePasswordAuthentication, "false")
}

// Parse parses the instance metadata document.
func Parse(doc []byte) (*Instance, error) {
	var x struct {
		Compute *Compute `json:"compute"`
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	if err := d.Decode(&x); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if x.Compute == nil {
		return nil, fmt.Errorf("%w: no compute section", ErrInvalid)
	}
	return &Instance{Compute: *x.Compute}, nil
}

// Client reads IMDS.
type Client struct {
	// Endpoint is host or host:port; DefaultEndpoint when empty.
	Endpoint string
	// HTTP must not use a proxy (IMDS refuses proxied requests); a
	// proxy-free client with a 10 s timeout when nil.
	HTTP *http.Client
}

// Instance fetches the instance metadata.
func (c *Client) Instance(ctx context.Context) (*Instance, error) {
	ep := c.Endpoint
	if ep == "" {
		ep = DefaultEndpoint
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	}
	url := "http://" + ep + "/metadata/instance?api-version=" + APIVersion
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata", "true")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("instance metadata: %w", err)
	}
	defer resp.Body.Close()
	doc, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("instance metadata: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("instance metadata: GET %s: HTTP %d", url, resp.StatusCode)
	}
	if len(doc) > MaxSize {
		return nil, fmt.Errorf("instance metadata: %w: over %d bytes", ErrInvalid, MaxSize)
	}
	return Parse(doc)
}
