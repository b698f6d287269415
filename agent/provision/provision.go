// Package provision applies Azure's provisioning settings to a Linux
// system the way WALinuxAgent does (azurelinuxagent/pa/provision and
// common/osutil): host name, admin user with sudo rights, password or none,
// SSH public keys, sshd's password authentication, custom data, SSH host
// keys, and a marker keyed by the VM ID so a clone into a new VM provisions
// again. Every file it touches is under a root directory ("/" in a VM, a
// temporary tree in tests); what touches the live system goes through a
// System.
package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vhdprep/vhdprep/agent/imds"
	"github.com/vhdprep/vhdprep/agent/ovf"
)

// Where provisioning keeps its state, as WALinuxAgent does: tools and
// extensions look for CustomData and certificates in /var/lib/waagent.
const (
	WaagentDir     = "/var/lib/waagent"
	CustomDataFile = WaagentDir + "/CustomData"
	SudoersFile    = "/etc/sudoers.d/vhdprep-agent"
	HostnameFile   = "/etc/hostname"
)

var (
	// ErrInvalidSettings marks provisioning settings that cannot be
	// applied safely (a host or user name no tool should be given).
	ErrInvalidSettings = errors.New("invalid provisioning settings")
	// ErrNoUserTool: neither useradd nor busybox adduser is installed.
	ErrNoUserTool = errors.New("no tool to create users (useradd or adduser) in the image")
	// ErrNoSettings: neither the provisioning media nor IMDS gave settings.
	ErrNoSettings = errors.New("no provisioning settings: no ovf-env.xml on a provisioning CD-ROM and none from IMDS")
)

// Settings are what provisioning applies, from ovf-env.xml or IMDS.
type Settings struct {
	Source   string // "ovf-env.xml on /dev/sr0", "IMDS"
	Media    string // the provisioning media's device; "" from IMDS
	HostName string
	UserName string
	// Password is a secret; String and LogValue redact it. Empty means
	// no password: the account gets none and sudo needs none.
	Password                      string
	DisablePasswordAuthentication bool
	PublicKeys                    []ovf.PublicKey
	KeyPairs                      []ovf.KeyPair
	// CustomData is saved as delivered (base64), as WALinuxAgent does.
	CustomData string
}

// String describes the settings without their secrets.
func (s Settings) String() string {
	pw := "none"
	if s.Password != "" {
		pw = "<redacted>"
	}
	return fmt.Sprintf("settings from %s{host %q, user %q, password %s, disable ssh password auth %v, %d public keys, custom data %d bytes}",
		s.Source, s.HostName, s.UserName, pw, s.DisablePasswordAuthentication, len(s.PublicKeys), len(s.CustomData))
}

// LogValue logs the settings as String describes them.
func (s Settings) LogValue() slog.Value { return slog.StringValue(s.String()) }

// FromOVF takes the settings of ovf-env.xml.
func FromOVF(e *ovf.Env, source string) Settings {
	return Settings{
		Source:                        source,
		HostName:                      e.HostName,
		UserName:                      e.UserName,
		Password:                      e.UserPassword,
		DisablePasswordAuthentication: e.DisableSSHPasswordAuthentication,
		PublicKeys:                    e.PublicKeys,
		KeyPairs:                      e.KeyPairs,
		CustomData:                    e.CustomData,
	}
}

// FromIMDS takes what instance metadata offers: host name, admin user and
// SSH public keys (IMDS never delivers a password or custom data).
func FromIMDS(c *imds.Compute) Settings {
	s := Settings{
		Source:                        "IMDS",
		HostName:                      c.HostName(),
		UserName:                      c.OSProfile.AdminUsername,
		DisablePasswordAuthentication: c.PasswordAuthenticationDisabled(),
	}
	for _, k := range c.PublicKeys {
		s.PublicKeys = append(s.PublicKeys, ovf.PublicKey{Path: k.Path, Value: k.KeyData})
	}
	return s
}

// Provisioner applies settings to the system under Root.
type Provisioner struct {
	Root string // "/" on a VM
	Sys  System
	Log  *slog.Logger // discarded when nil
}

// StepError is a failed provisioning step; its message is what the health
// report shows the operator.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return "provisioning step " + e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// Apply runs the provisioning steps in WALinuxAgent's order and stops at
// the first failure. Every step is idempotent: a provisioning interrupted
// by a reboot is run again from the start.
func (p *Provisioner) Apply(ctx context.Context, s Settings) error {
	if err := s.validate(); err != nil {
		return &StepError{"settings", err}
	}
	p.log().Info("provisioning", "settings", s)
	renamed := p.runningHostname() != s.HostName
	steps := []struct {
		name string
		run  func() error
	}{
		{"hostname", func() error { return p.setHostname(s.HostName) }},
		{"publish-hostname", func() error { p.publishHostname(ctx, s.HostName, renamed); return nil }},
		{"user", func() error { return p.ensureUser(ctx, s.UserName) }},
		{"password", func() error { return p.setPassword(ctx, s.UserName, s.Password) }},
		{"sudoers", func() error { return p.grantSudo(s.UserName, s.Password == "") }},
		{"sshd", func() error { return p.configureSSHD(s.DisablePasswordAuthentication) }},
		{"ssh-keys", func() error { return p.deployKeys(s.UserName, s.PublicKeys, s.KeyPairs) }},
		{"custom-data", func() error { return p.saveCustomData(s.CustomData) }},
		{"ssh-host-keys", func() error { return p.ensureHostKeys(ctx) }},
		{"sshd-reload", func() error { p.reloadSSHD(ctx); return nil }},
	}
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return &StepError{st.name, err}
		}
		if err := st.run(); err != nil {
			return &StepError{st.name, err}
		}
		p.log().Debug("provisioning step done", "step", st.name)
	}
	return nil
}

func (p *Provisioner) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// path maps an absolute path of the provisioned system into Root.
func (p *Provisioner) path(abs string) string { return filepath.Join(p.Root, abs) }

// hostnameRE is an RFC 1123 host name: dot-separated labels of letters,
// digits and inner hyphens.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// userRE is what useradd and busybox adduser accept and what can go into
// a sudoers line unquoted: no option-like leading dash, no separators.
var userRE = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)

func (s Settings) validate() error {
	if len(s.HostName) > 253 || !hostnameRE.MatchString(s.HostName) {
		return fmt.Errorf("%w: host name %q is not a valid RFC 1123 name", ErrInvalidSettings, s.HostName)
	}
	if !userRE.MatchString(s.UserName) || s.UserName == "root" {
		return fmt.Errorf("%w: user name %q must be lowercase letters, digits, '_', '.', '-' (not root)", ErrInvalidSettings, s.UserName)
	}
	if strings.ContainsAny(s.Password, "\x00\n") {
		return fmt.Errorf("%w: password contains a NUL or newline", ErrInvalidSettings)
	}
	return nil
}

// setHostname writes /etc/hostname and sets the running host name.
func (p *Provisioner) setHostname(name string) error {
	if err := p.writeFile(HostnameFile, []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	return p.Sys.SetHostname(name)
}

// saveCustomData writes custom data where WALinuxAgent does, readable only
// by root: it may hold secrets.
func (p *Provisioner) saveCustomData(data string) error {
	if data == "" {
		return nil
	}
	if err := p.mkdirAll(WaagentDir, 0o700); err != nil {
		return err
	}
	return p.writeFile(CustomDataFile, []byte(data), 0o600)
}

func (p *Provisioner) mkdirAll(abs string, perm os.FileMode) error {
	return os.MkdirAll(p.path(abs), perm)
}

// writeFile replaces abs (under Root) by data with mode perm, through a
// temporary file and a rename so a crash leaves the old or the new file.
// It never writes through a symbolic link.
func (p *Provisioner) writeFile(abs string, data []byte, perm os.FileMode) error {
	target := p.path(abs)
	if fi, err := os.Lstat(target); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link; refusing to write through it", abs)
	}
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), target)
}

// readFile reads abs under Root, at most limit bytes.
func (p *Provisioner) readFile(abs string, limit int64) ([]byte, error) {
	f, err := os.Open(p.path(abs))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", abs, limit)
	}
	return b, nil
}
