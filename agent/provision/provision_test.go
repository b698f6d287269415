package provision

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vhdprep/vhdprep/agent/imds"
	"github.com/vhdprep/vhdprep/agent/internal/sha512crypt"
	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/agent/ovf"
	"github.com/vhdprep/vhdprep/agent/provision/provisiontest"
)

const key1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEnb2K2VZb1u0J6k5zGqWv1xF2J0x3l8ZC7bX1ZcHq9J alice@example"
const key2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 bob@example"

func setup(t *testing.T, tools ...string) (*Provisioner, *provisiontest.System) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc/ssh", "etc/sudoers.d", "home", "var/lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sys := provisiontest.New(root, tools...)
	return &Provisioner{Root: root, Sys: sys}, sys
}

func writeFile(t *testing.T, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mode(t *testing.T, root, rel string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func settings() Settings {
	return Settings{
		Source: "test", HostName: "vm-01.example", UserName: "azureuser", Password: "S3cret!pass",
		PublicKeys: []ovf.PublicKey{{Path: "/home/azureuser/.ssh/authorized_keys", Value: key1}, {Value: key2}},
		CustomData: "IyEvYmluL3NoCmVjaG8gaGk=",
	}
}

func TestApplyDebian(t *testing.T) {
	p, sys := setup(t, append(provisiontest.Debian, "systemctl")...)
	root := p.Root
	writeFile(t, root, "etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n")
	s := settings()
	s.DisablePasswordAuthentication = true
	if err := p.Apply(context.Background(), s); err != nil {
		t.Fatal(err)
	}

	if got := readFile(t, root, "etc/hostname"); got != "vm-01.example\n" || sys.Hostname() != "vm-01.example" {
		t.Errorf("hostname file %q, runtime %q", got, sys.Hostname())
	}
	acct, err := p.LookupUser("azureuser")
	if err != nil {
		t.Fatal(err)
	}
	if acct.Home != "/home/azureuser" || acct.UID != 1000 {
		t.Errorf("account %+v", acct)
	}
	if calls := sys.Calls(); len(calls) == 0 || calls[0].Name != "useradd" || strings.Join(calls[0].Args, " ") != "-m azureuser" {
		t.Errorf("user not created with useradd -m: %+v", calls)
	}

	// The password is stored hashed, passed on stdin, never in arguments.
	hash := sys.Shadow("azureuser")
	if again, _ := sha512crypt.Crypt("S3cret!pass", hash); again != hash || !strings.HasPrefix(hash, "$6$") {
		t.Errorf("shadow entry %q is not the SHA-512 crypt of the password", hash)
	}
	for _, c := range sys.Calls() {
		if strings.Contains(strings.Join(c.Args, " ")+c.Stdin, "S3cret") {
			t.Errorf("password in clear given to %s", c.Name)
		}
	}

	if got := readFile(t, root, SudoersFile); got != "azureuser ALL=(ALL) ALL\n" || mode(t, root, SudoersFile) != 0o440 {
		t.Errorf("sudoers %q mode %v", got, mode(t, root, SudoersFile))
	}

	ak := "home/azureuser/.ssh/authorized_keys"
	if got := readFile(t, root, ak); got != key1+"\n"+key2+"\n" {
		t.Errorf("authorized_keys %q", got)
	}
	if mode(t, root, ak) != 0o600 || mode(t, root, "home/azureuser/.ssh") != 0o700 {
		t.Errorf("modes: authorized_keys %v, .ssh %v", mode(t, root, ak), mode(t, root, "home/azureuser/.ssh"))
	}
	for _, rel := range []string{ak, "home/azureuser/.ssh"} {
		if o, ok := sys.OwnerOf(filepath.Join(root, rel)); !ok || o.UID != 1000 || o.GID != 1000 {
			t.Errorf("%s owner %+v (set %v), want 1000:1000", rel, o, ok)
		}
	}

	if got := readFile(t, root, "etc/ssh/sshd_config.d/00-vhdprep-agent.conf"); !strings.Contains(got, "PasswordAuthentication no\n") || !strings.Contains(got, "ChallengeResponseAuthentication no\n") {
		t.Errorf("sshd drop-in %q", got)
	}
	if got := readFile(t, root, "etc/ssh/sshd_config"); got != "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n" {
		t.Errorf("sshd_config changed needlessly: %q", got)
	}

	if got := readFile(t, root, CustomDataFile); got != s.CustomData || mode(t, root, CustomDataFile) != 0o600 {
		t.Errorf("CustomData %q mode %v", got, mode(t, root, CustomDataFile))
	}
	if _, err := os.Stat(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")); err != nil {
		t.Errorf("host keys not generated: %v", err)
	}
	if c := sys.Calls(); c[len(c)-1].Name != "systemctl" || strings.Join(c[len(c)-1].Args, " ") != "try-reload-or-restart ssh.service sshd.service" {
		t.Errorf("sshd not reloaded last: %+v", c[len(c)-1])
	}

	// Idempotent: a second run changes nothing that matters and duplicates nothing.
	if err := p.Apply(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, root, ak); got != key1+"\n"+key2+"\n" {
		t.Errorf("authorized_keys after a second run %q", got)
	}
	if got := readFile(t, root, SudoersFile); got != "azureuser ALL=(ALL) ALL\n" {
		t.Errorf("sudoers after a second run %q", got)
	}
	n := 0
	for _, c := range sys.Calls() {
		if c.Name == "useradd" || c.Name == "ssh-keygen" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("useradd and ssh-keygen ran %d times in two runs, want once each", n)
	}
}

func TestApplyBusyboxWithoutPassword(t *testing.T) {
	p, sys := setup(t, provisiontest.Busybox...)
	root := p.Root
	writeFile(t, root, "etc/ssh/sshd_config", "PasswordAuthentication yes\nX11Forwarding no\nMatch User backup\n  PasswordAuthentication yes\n")
	writeFile(t, root, "etc/ssh/ssh_host_rsa_key", "existing")
	s := settings()
	s.Password, s.CustomData, s.DisablePasswordAuthentication = "", "", true
	if err := p.Apply(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if c := sys.Calls(); c[0].Name != "adduser" || strings.Join(c[0].Args, " ") != "-D azureuser" {
		t.Errorf("user not created with busybox adduser -D: %+v", c)
	}
	if got := sys.Shadow("azureuser"); got != "*" {
		t.Errorf("password field %q, want * (no password, keys still allowed)", got)
	}
	if got := readFile(t, root, SudoersFile); got != "azureuser ALL=(ALL) NOPASSWD: ALL\n" {
		t.Errorf("sudoers %q", got)
	}
	want := "PasswordAuthentication no\nX11Forwarding no\nChallengeResponseAuthentication no\nMatch User backup\n  PasswordAuthentication yes\n"
	if got := readFile(t, root, "etc/ssh/sshd_config"); got != want {
		t.Errorf("sshd_config\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(root, CustomDataFile)); !os.IsNotExist(err) {
		t.Errorf("CustomData written without custom data: %v", err)
	}
	for _, c := range sys.Calls() {
		if c.Name == "ssh-keygen" {
			t.Error("host keys regenerated although the image has some")
		}
	}
}

func TestSSHDEarlierSettingWins(t *testing.T) {
	p, _ := setup(t)
	writeFile(t, p.Root, "etc/ssh/sshd_config", "PasswordAuthentication no\nInclude sshd_config.d/*.conf\n")
	if err := p.configureSSHD(false); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p.Root, "etc/ssh/sshd_config"); got != "PasswordAuthentication yes\nInclude sshd_config.d/*.conf\n" {
		t.Errorf("a setting before the Include must change too: %q", got)
	}
	if got := readFile(t, p.Root, sshdDropIn); !strings.Contains(got, "PasswordAuthentication yes") {
		t.Errorf("drop-in %q", got)
	}
}

func TestSudoersDirCreated(t *testing.T) {
	p, _ := setup(t)
	os.Remove(filepath.Join(p.Root, "etc/sudoers.d"))
	writeFile(t, p.Root, "etc/sudoers", "root ALL=(ALL) ALL\n")
	if err := p.grantSudo("azureuser", false); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p.Root, "etc/sudoers"); got != "root ALL=(ALL) ALL\n\n#includedir /etc/sudoers.d\n" {
		t.Errorf("sudoers %q", got)
	}
	if err := p.grantSudo("azureuser", true); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p.Root, SudoersFile); got != "azureuser ALL=(ALL) NOPASSWD: ALL\n" {
		t.Errorf("a changed setting must replace the user's line: %q", got)
	}
}

func TestKeyByFingerprint(t *testing.T) {
	p, _ := setup(t, provisiontest.Debian...)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "key"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(der)
	thumb := strings.ToUpper(hex.EncodeToString(sum[:]))
	writeFile(t, p.Root, "var/lib/waagent/"+thumb+".crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	s := settings()
	s.PublicKeys = []ovf.PublicKey{{Fingerprint: thumb}}
	if err := p.Apply(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	if got := readFile(t, p.Root, "home/azureuser/.ssh/authorized_keys"); got != string(ssh.MarshalAuthorizedKey(sp)) {
		t.Errorf("authorized_keys %q", got)
	}

	s.PublicKeys = []ovf.PublicKey{{Fingerprint: strings.Repeat("AB", 20)}}
	var se *StepError
	if err := p.Apply(context.Background(), s); !errors.As(err, &se) || se.Step != "ssh-keys" || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("missing certificate: err = %v", err)
	}
}

func TestStepFailure(t *testing.T) {
	p, sys := setup(t, provisiontest.Debian...)
	sys.Fail["useradd"] = errors.New("exit status 9")
	err := p.Apply(context.Background(), settings())
	var se *StepError
	if !errors.As(err, &se) || se.Step != "user" || !strings.Contains(err.Error(), "exit status 9") {
		t.Errorf("err = %v, want the user step's failure", err)
	}

	p, _ = setup(t)
	if err := p.Apply(context.Background(), settings()); !errors.Is(err, ErrNoUserTool) {
		t.Errorf("no tools: err = %v, want ErrNoUserTool", err)
	}
}

func TestInvalidSettings(t *testing.T) {
	p, sys := setup(t, provisiontest.Debian...)
	for _, mod := range []func(*Settings){
		func(s *Settings) { s.HostName = "bad_host" },
		func(s *Settings) { s.HostName = "-x" },
		func(s *Settings) { s.HostName = "" },
		func(s *Settings) { s.UserName = "-oops" },
		func(s *Settings) { s.UserName = "root" },
		func(s *Settings) { s.UserName = "a b" },
		func(s *Settings) { s.UserName = "eve ALL=(ALL) NOPASSWD: ALL\nx" },
		func(s *Settings) { s.Password = "a\nb" },
		func(s *Settings) { s.PublicKeys = []ovf.PublicKey{{Value: "ssh-rsa AAAA\nssh-rsa BBBB"}} },
		func(s *Settings) { s.PublicKeys = []ovf.PublicKey{{Value: "command=\"x\" ssh-rsa AAAA"}} },
	} {
		s := settings()
		mod(&s)
		if err := p.Apply(context.Background(), s); !errors.Is(err, ErrInvalidSettings) && !strings.Contains(fmtErr(err), "public key") {
			t.Errorf("%+v: err = %v", s, err)
		}
	}
	_ = sys
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestRefusesSymlinks(t *testing.T) {
	p, _ := setup(t, provisiontest.Debian...)
	if err := os.Symlink("/etc/passwd", filepath.Join(p.Root, "etc/hostname")); err != nil {
		t.Fatal(err)
	}
	if err := p.setHostname("vm"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("wrote through a symlink: %v", err)
	}
}

func TestMediaAndIMDSFallback(t *testing.T) {
	p, sys := setup(t, provisiontest.Debian...)
	media := t.TempDir()
	writeFile(t, media, "ovf-env.xml", ovfEnv)
	writeFile(t, p.Root, "dev/sr0", "")
	writeFile(t, p.Root, "sys/block/sr0/device/type", "5\n")
	writeFile(t, p.Root, "sys/block/sda/device/type", "0\n")
	writeFile(t, p.Root, "sys/block/sr1/device/type", "5\n")
	if got := strings.Join(p.CDROMs(), " "); got != "/dev/sr0 /dev/sr1" {
		t.Errorf("CDROMs = %s", got)
	}
	sys.Media[filepath.Join(p.Root, "dev/sr1")] = media
	sys.MediaType = "iso9660"
	s, err := p.LoadSettings(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.HostName != "media-host" || s.UserName != "mediauser" || s.Password != "pw-from-media" || s.Source != "ovf-env.xml on /dev/sr1" {
		t.Errorf("settings %v", s)
	}
	if sys.Mounted() {
		t.Error("media left mounted")
	}

	// No media: IMDS.
	delete(sys.Media, filepath.Join(p.Root, "dev/sr1"))
	md := &imds.Client{Endpoint: "127.0.0.1:1"}
	if _, err := p.LoadSettings(context.Background(), md); !errors.Is(err, ErrNoSettings) {
		t.Errorf("no media, no IMDS: err = %v", err)
	}
}

const ovfEnv = `<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure">
<wa:ProvisioningSection><wa:Version>1.0</wa:Version>
<LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">
<ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
<HostName>media-host</HostName><UserName>mediauser</UserName><UserPassword>pw-from-media</UserPassword>
<DisableSshPasswordAuthentication>false</DisableSshPasswordAuthentication>
</LinuxProvisioningConfigurationSet></wa:ProvisioningSection>
<wa:PlatformSettingsSection><wa:Version>1.0</wa:Version><wa:PlatformSettings><wa:ProvisionGuestAgent>true</wa:ProvisionGuestAgent></wa:PlatformSettings></wa:PlatformSettingsSection>
</Environment>`

func TestFromIMDS(t *testing.T) {
	c := &imds.Compute{Name: "vmname", OSProfile: imds.OSProfile{AdminUsername: "azureuser", ComputerName: "host1", DisablePasswordAuthentication: "true"},
		PublicKeys: []imds.PublicKey{{KeyData: key1, Path: "/home/azureuser/.ssh/authorized_keys"}}}
	s := FromIMDS(c)
	if s.HostName != "host1" || s.UserName != "azureuser" || s.Password != "" || !s.DisablePasswordAuthentication || len(s.PublicKeys) != 1 || s.PublicKeys[0].Value != key1 {
		t.Errorf("FromIMDS = %v", s)
	}
}

func TestVMIDAndMarker(t *testing.T) {
	p, sys := setup(t)
	// The firmware's byte order, as WALinuxAgent's comment shows it.
	sys.UUID = "544CDFD0-CB4E-4B4A-9954-5BDF3ED5C3B8"
	id, err := p.VMID()
	if err != nil || id != "d0df4c54-4ecb-4a4b-9954-5bdf3ed5c3b8" {
		t.Fatalf("VMID = %q, %v", id, err)
	}
	if ok, err := p.IsProvisioned(id); ok || err != nil {
		t.Errorf("fresh system provisioned: %v %v", ok, err)
	}
	if err := p.MarkProvisioned(id); err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.IsProvisioned(id); !ok {
		t.Error("marker not recognized")
	}
	if ok, _ := p.IsProvisioned("11111111-2222-3333-4444-555555555555"); ok {
		t.Error("a clone in a new VM counts as provisioned")
	}
	// A marker in the firmware's byte order (older agents) counts too.
	writeFile(t, p.Root, layout.MarkerFile[1:], "544CDFD0-CB4E-4B4A-9954-5BDF3ED5C3B8\n")
	if ok, _ := p.IsProvisioned(id); !ok {
		t.Error("marker in firmware byte order not recognized")
	}
	sys.UUID = "not-a-uuid"
	if _, err := p.VMID(); err == nil {
		t.Error("VMID accepted a malformed UUID")
	}
}

func TestSettingsRedacted(t *testing.T) {
	s := settings()
	if str := s.String(); strings.Contains(str, s.Password) || strings.Contains(str, s.CustomData) || !strings.Contains(str, "azureuser") {
		t.Errorf("String: %s", str)
	}
}
