// Package ovf parses ovf-env.xml, the provisioning document Azure puts on
// the VM's provisioning media (a UDF or ISO 9660 CD-ROM): host name, admin
// user and password, SSH keys, custom data and platform settings. The
// required elements are the ones WALinuxAgent requires
// (azurelinuxagent/common/protocol/ovfenv.py).
package ovf

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// The document's namespaces.
const (
	NamespaceOVF   = "http://schemas.dmtf.org/ovf/environment/1"
	NamespaceAzure = "http://schemas.microsoft.com/windowsazure"
)

// MaxSize bounds the document a caller should read: custom data is at most
// 64 KiB of base64, the rest is small.
const MaxSize = 1 << 20

// ErrInvalid marks a document that does not parse or lacks a required
// element.
var ErrInvalid = errors.New("invalid ovf-env.xml")

// Env is the provisioning configuration. UserPassword and CustomData are
// secrets: String and LogValue redact them, so an Env can be logged.
type Env struct {
	Version string // of the provisioning section, "1.0"

	HostName     string
	UserName     string
	UserPassword string // empty when none was given
	// DisableSSHPasswordAuthentication is true when the document says
	// "true" (case-insensitively), as WALinuxAgent reads it.
	DisableSSHPasswordAuthentication bool
	PublicKeys                       []PublicKey
	KeyPairs                         []KeyPair
	// CustomData is the text as delivered: base64, which WALinuxAgent
	// saves as is. DecodeCustomData decodes it.
	CustomData string

	// ProvisionGuestAgent is the platform setting as written (WALinuxAgent
	// disables itself when it is "false"); it may be empty.
	ProvisionGuestAgent string
	PreprovisionedVM    bool
}

// PublicKey is an SSH public key for the admin user: given by Value, or by
// Fingerprint, the thumbprint of a certificate delivered with the goal
// state's certificates.
type PublicKey struct {
	Path        string
	Fingerprint string
	Value       string
}

// KeyPair is an SSH key pair delivered as a certificate with its key.
type KeyPair struct {
	Path        string
	Fingerprint string
}

// GuestAgentDisabled reports whether the platform asked for no guest agent.
func (e *Env) GuestAgentDisabled() bool {
	return strings.EqualFold(strings.TrimSpace(e.ProvisionGuestAgent), "false")
}

// DecodeCustomData returns the custom data decoded from base64.
func (e *Env) DecodeCustomData() ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.CustomData))
	if err != nil {
		return nil, fmt.Errorf("ovf-env.xml CustomData: not base64: %w", err)
	}
	return b, nil
}

const redacted = "<redacted>"

// String describes the Env with its secrets redacted.
func (e *Env) String() string {
	return fmt.Sprintf("ovf-env{host %q, user %q, password %s, disable ssh password auth %v, %d public keys, %d key pairs, custom data %s, provision guest agent %q}",
		e.HostName, e.UserName, secret(e.UserPassword), e.DisableSSHPasswordAuthentication,
		len(e.PublicKeys), len(e.KeyPairs), secret(e.CustomData), e.ProvisionGuestAgent)
}

// LogValue logs the Env with its secrets redacted.
func (e *Env) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("hostname", e.HostName),
		slog.String("user", e.UserName),
		slog.String("password", secret(e.UserPassword)),
		slog.Bool("disable_ssh_password_auth", e.DisableSSHPasswordAuthentication),
		slog.Int("public_keys", len(e.PublicKeys)),
		slog.Int("key_pairs", len(e.KeyPairs)),
		slog.String("custom_data", secret(e.CustomData)),
		slog.String("provision_guest_agent", e.ProvisionGuestAgent),
	)
}

// GoString keeps %#v from printing the secrets too.
func (e *Env) GoString() string { return e.String() }

func secret(s string) string {
	if s == "" {
		return "(none)"
	}
	return redacted
}

type xmlEnv struct {
	XMLName      xml.Name `xml:"http://schemas.dmtf.org/ovf/environment/1 Environment"`
	Provisioning *struct {
		Version *string `xml:"http://schemas.microsoft.com/windowsazure Version"`
		Linux   *struct {
			HostName     *string `xml:"http://schemas.microsoft.com/windowsazure HostName"`
			UserName     *string `xml:"http://schemas.microsoft.com/windowsazure UserName"`
			UserPassword string  `xml:"http://schemas.microsoft.com/windowsazure UserPassword"`
			DisableSSH   *string `xml:"http://schemas.microsoft.com/windowsazure DisableSshPasswordAuthentication"`
			PublicKeys   []struct {
				Fingerprint string `xml:"http://schemas.microsoft.com/windowsazure Fingerprint"`
				Path        string `xml:"http://schemas.microsoft.com/windowsazure Path"`
				Value       string `xml:"http://schemas.microsoft.com/windowsazure Value"`
			} `xml:"http://schemas.microsoft.com/windowsazure SSH>PublicKeys>PublicKey"`
			KeyPairs []struct {
				Fingerprint string `xml:"http://schemas.microsoft.com/windowsazure Fingerprint"`
				Path        string `xml:"http://schemas.microsoft.com/windowsazure Path"`
			} `xml:"http://schemas.microsoft.com/windowsazure SSH>KeyPairs>KeyPair"`
			CustomData string `xml:"http://schemas.microsoft.com/windowsazure CustomData"`
		} `xml:"http://schemas.microsoft.com/windowsazure LinuxProvisioningConfigurationSet"`
	} `xml:"http://schemas.microsoft.com/windowsazure ProvisioningSection"`
	Platform *struct {
		Settings *struct {
			ProvisionGuestAgent *string `xml:"http://schemas.microsoft.com/windowsazure ProvisionGuestAgent"`
			PreprovisionedVM    string  `xml:"http://schemas.microsoft.com/windowsazure PreprovisionedVm"`
		} `xml:"http://schemas.microsoft.com/windowsazure PlatformSettings"`
	} `xml:"http://schemas.microsoft.com/windowsazure PlatformSettingsSection"`
}

// Parse parses ovf-env.xml. It requires what WALinuxAgent requires: the
// provisioning section with its version, a Linux configuration set with
// host and user names, and the platform settings with ProvisionGuestAgent
// (which may be empty).
func Parse(doc []byte) (*Env, error) {
	var x xmlEnv
	doc = bytes.TrimPrefix(doc, []byte{0xEF, 0xBB, 0xBF})
	if err := xml.Unmarshal(doc, &x); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	missing := func(what string) error { return fmt.Errorf("%w: no %s", ErrInvalid, what) }
	p := x.Provisioning
	switch {
	case p == nil:
		return nil, missing("ProvisioningSection")
	case p.Version == nil:
		return nil, missing("ProvisioningSection/Version")
	case p.Linux == nil:
		return nil, missing("LinuxProvisioningConfigurationSet (is this a Windows provisioning document?)")
	case p.Linux.HostName == nil:
		return nil, missing("HostName")
	case p.Linux.UserName == nil:
		return nil, missing("UserName")
	case x.Platform == nil:
		return nil, missing("PlatformSettingsSection")
	case x.Platform.Settings == nil:
		return nil, missing("PlatformSettings")
	case x.Platform.Settings.ProvisionGuestAgent == nil:
		return nil, missing("ProvisionGuestAgent")
	}
	l := p.Linux
	e := &Env{
		Version:                          strings.TrimSpace(*p.Version),
		HostName:                         strings.TrimSpace(*l.HostName),
		UserName:                         strings.TrimSpace(*l.UserName),
		UserPassword:                     l.UserPassword,
		DisableSSHPasswordAuthentication: l.DisableSSH != nil && strings.EqualFold(strings.TrimSpace(*l.DisableSSH), "true"),
		CustomData:                       strings.TrimSpace(l.CustomData),
		ProvisionGuestAgent:              strings.TrimSpace(*x.Platform.Settings.ProvisionGuestAgent),
		PreprovisionedVM:                 strings.EqualFold(strings.TrimSpace(x.Platform.Settings.PreprovisionedVM), "true"),
	}
	for _, k := range l.PublicKeys {
		e.PublicKeys = append(e.PublicKeys, PublicKey{Path: strings.TrimSpace(k.Path), Fingerprint: strings.TrimSpace(k.Fingerprint), Value: strings.TrimSpace(k.Value)})
	}
	for _, k := range l.KeyPairs {
		e.KeyPairs = append(e.KeyPairs, KeyPair{Path: strings.TrimSpace(k.Path), Fingerprint: strings.TrimSpace(k.Fingerprint)})
	}
	return e, nil
}
