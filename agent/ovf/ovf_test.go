package ovf

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/internal/fixtures"
)

func TestFixtures(t *testing.T) {
	dir := fixtures.Require(t)
	key := PublicKey{Path: "$HOME/UserName/.ssh/authorized_keys", Fingerprint: "EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62", Value: "ssh-rsa AAAANOTAREALKEY== foo@bar.local"}
	pair := KeyPair{Path: "$HOME/UserName/.ssh/id_rsa", Fingerprint: "EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62"}
	for name, agent := range map[string]string{
		"ovf-env.xml":   "false",
		"ovf-env-2.xml": "true",
		"ovf-env-3.xml": "",
		"ovf-env-4.xml": "bad data",
	} {
		t.Run(name, func(t *testing.T) {
			e, err := Parse(fixtures.Read(t, dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if e.Version != "1.0" || e.HostName != "HostName" || e.UserName != "UserName" || e.UserPassword != "UserPassword" ||
				e.DisableSSHPasswordAuthentication || e.CustomData != "CustomData" || e.PreprovisionedVM {
				t.Errorf("parsed %+v", *e)
			}
			if len(e.PublicKeys) != 1 || e.PublicKeys[0] != key || len(e.KeyPairs) != 1 || e.KeyPairs[0] != pair {
				t.Errorf("keys %+v, pairs %+v", e.PublicKeys, e.KeyPairs)
			}
			if e.ProvisionGuestAgent != agent || e.GuestAgentDisabled() != (agent == "false") {
				t.Errorf("ProvisionGuestAgent %q (disabled %v), want %q", e.ProvisionGuestAgent, e.GuestAgentDisabled(), agent)
			}
		})
	}
}

const minimal = `<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure">
<wa:ProvisioningSection><wa:Version>1.0</wa:Version>
<LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">
<HostName>vm1</HostName><UserName>azureuser</UserName>%s
</LinuxProvisioningConfigurationSet></wa:ProvisioningSection>
<wa:PlatformSettingsSection><wa:PlatformSettings><wa:ProvisionGuestAgent>true</wa:ProvisionGuestAgent></wa:PlatformSettings></wa:PlatformSettingsSection>
</Environment>`

func TestParse(t *testing.T) {
	e, err := Parse([]byte(fmt.Sprintf(minimal, `<DisableSshPasswordAuthentication>TRUE</DisableSshPasswordAuthentication><CustomData>aGVsbG8=</CustomData>`)))
	if err != nil {
		t.Fatal(err)
	}
	if e.UserPassword != "" || !e.DisableSSHPasswordAuthentication || e.HostName != "vm1" {
		t.Errorf("parsed %v", e)
	}
	if b, err := e.DecodeCustomData(); err != nil || string(b) != "hello" {
		t.Errorf("custom data %q, %v", b, err)
	}
	if _, err := (&Env{CustomData: "CustomData!"}).DecodeCustomData(); err == nil {
		t.Error("DecodeCustomData accepted non-base64")
	}

	for name, doc := range map[string]string{
		"not XML":          "<Environment",
		"wrong namespace":  strings.ReplaceAll(fmt.Sprintf(minimal, ""), "http://schemas.dmtf.org/ovf/environment/1", "urn:x"),
		"no host name":     strings.Replace(fmt.Sprintf(minimal, ""), "<HostName>vm1</HostName>", "", 1),
		"no user name":     strings.Replace(fmt.Sprintf(minimal, ""), "<UserName>azureuser</UserName>", "", 1),
		"no platform":      strings.Replace(fmt.Sprintf(minimal, ""), "<wa:ProvisionGuestAgent>true</wa:ProvisionGuestAgent>", "", 1),
		"windows document": strings.ReplaceAll(fmt.Sprintf(minimal, ""), "LinuxProvisioningConfigurationSet", "WindowsProvisioningConfigurationSet"),
	} {
		if _, err := Parse([]byte(doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// Secrets never reach a log or a formatted string.
func TestRedaction(t *testing.T) {
	e := &Env{HostName: "vm1", UserName: "azureuser", UserPassword: "hunter2-secret", CustomData: "c2VjcmV0LWN1c3RvbQ=="}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("provisioning", "env", e)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("provisioning", "env", e)
	for _, s := range []string{e.String(), fmt.Sprint(e), fmt.Sprintf("%v %+v %#v %s", e, e, e, e), logged.String()} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "c2VjcmV0") {
			t.Errorf("secret printed: %s", s)
		}
		if !strings.Contains(s, "azureuser") {
			t.Errorf("non-secret fields missing: %s", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(minimal, "<UserPassword>p</UserPassword>")))
	for _, b := range fixtures.Seeds("ovf-env.xml", "ovf-env-2.xml", "ovf-env-3.xml", "ovf-env-4.xml") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		e, err := Parse(doc)
		if err != nil {
			return
		}
		pw := e.UserPassword
		if len(pw) >= 8 && strings.Contains(e.String(), pw) && !strings.Contains(e.HostName+e.UserName+e.ProvisionGuestAgent, pw) {
			t.Fatalf("password %q printed: %s", pw, e)
		}
	})
}
