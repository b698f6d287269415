//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshKey is the key pair ovf-env.xml gives the admin user.
type sshKey struct{ signer ssh.Signer }

func newSSHKey(t *testing.T) sshKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{signer}
}

func (k sshKey) authorizedKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.signer.PublicKey()))) + " e2e@vhdprep"
}

func (k sshKey) auth() ssh.AuthMethod { return ssh.PublicKeys(k.signer) }

func passwordAuth(p string) ssh.AuthMethod { return ssh.Password(p) }

// ovfEnv is the provisioning document Azure puts on the VM's CD-ROM.
func ovfEnv(host, user, password, authorizedKey string) string {
	e := html.EscapeString
	return `<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <wa:ProvisioningSection>
    <wa:Version>1.0</wa:Version>
    <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
      <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
      <HostName>` + e(host) + `</HostName>
      <UserName>` + e(user) + `</UserName>
      <UserPassword>` + e(password) + `</UserPassword>
      <DisableSshPasswordAuthentication>false</DisableSshPasswordAuthentication>
      <SSH>
        <PublicKeys>
          <PublicKey>
            <Path>/home/` + e(user) + `/.ssh/authorized_keys</Path>
            <Value>` + e(authorizedKey) + `</Value>
          </PublicKey>
        </PublicKeys>
      </SSH>
    </LinuxProvisioningConfigurationSet>
  </wa:ProvisioningSection>
  <wa:PlatformSettingsSection>
    <wa:Version>1.0</wa:Version>
    <wa:PlatformSettings>
      <wa:KmsServerHostname>kms.core.windows.net</wa:KmsServerHostname>
      <wa:ProvisionGuestAgent>true</wa:ProvisionGuestAgent>
      <wa:GuestAgentPackageName i:nil="true"/>
      <wa:PreprovisionedVm>false</wa:PreprovisionedVm>
    </wa:PlatformSettings>
  </wa:PlatformSettingsSection>
</Environment>
`
}

// provisioningISO is the CD-ROM Azure attaches: ovf-env.xml on ISO 9660.
func provisioningISO(t *testing.T, dir, ovf string) string {
	src := filepath.Join(dir, "ovf")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "ovf-env.xml"), []byte(ovf), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "ovf-env.iso")
	if out, err := exec.Command("genisoimage", "-quiet", "-J", "-r", "-V", "rd_rdfe_stable", "-o", iso, src).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, out)
	}
	return iso
}

// guestShell is an SSH connection to the guest.
type guestShell struct {
	t *testing.T
	c *ssh.Client
}

// ssh connects as user, retrying while sshd comes up.
func (m *machine) ssh(ctx context.Context, user string, auth ssh.AuthMethod) *guestShell {
	t := m.t
	t.Helper()
	cfg := &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{auth},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second}
	addr := fmt.Sprintf("127.0.0.1:%d", m.sshPort)
	var c *ssh.Client
	var last error
	m.waitFor(ctx, "an SSH login as "+user, func() bool {
		c, last = ssh.Dial("tcp", addr, cfg)
		return last == nil
	})
	if c == nil {
		t.Fatalf("ssh %s@%s: %v", user, addr, last)
	}
	return &guestShell{t, c}
}

func (g *guestShell) run(cmd string) string { return g.runInput("", cmd) }

// runInput runs cmd with stdin and returns its output; a failing command fails the test.
func (g *guestShell) runInput(stdin, cmd string) string {
	g.t.Helper()
	s, err := g.c.NewSession()
	if err != nil {
		g.t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = strings.NewReader(stdin), &out, &errb
	if err := s.Run(cmd); err != nil {
		g.t.Fatalf("in the guest, %s: %v\n%s%s", cmd, err, out.String(), errb.String())
	}
	return out.String()
}

func (g *guestShell) close() { g.c.Close() }
