package inject

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/internal/testagent"
	"github.com/vhdprep/vhdprep/lint"
)

// hostArch is the host's architecture as guest.DetectArch names it: the
// trees below are made of host binaries.
var hostArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]

// systemdTree makes a small merged-/usr systemd guest.
func systemdTree(t *testing.T) string {
	t.Helper()
	if hostArch == "" {
		t.Skip("the test trees use host binaries; no agent is built for " + runtime.GOARCH)
	}
	d := t.TempDir()
	for _, dir := range []string{"usr/bin", "usr/sbin", "usr/lib/systemd/system", "etc", "var"} {
		mkdir(t, d, dir)
	}
	for _, l := range [][2]string{{"usr/bin", "bin"}, {"usr/sbin", "sbin"}, {"usr/lib", "lib"}, {"../lib/systemd/systemd", "usr/sbin/init"}} {
		if err := os.Symlink(l[0], filepath.Join(d, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, d, "usr/bin/true", string(true_(t)), 0o755)
	writeFile(t, d, "usr/lib/systemd/systemd", "#!/bin/sh\n", 0o755)
	writeFile(t, d, "etc/os-release", "ID=debian\nVERSION_ID=12\n", 0o644)
	return d
}

// true_ is the host's /bin/true: a dynamically linked ELF of its
// architecture, as a distribution's are.
func true_(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip("no /bin/true to give the tree an architecture")
	}
	return b
}

func mkdir(t *testing.T, root, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, root, name, data string, mode fs.FileMode) {
	t.Helper()
	mkdir(t, root, filepath.Dir(name))
	if err := os.WriteFile(filepath.Join(root, name), []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, root, target, name string) {
	t.Helper()
	mkdir(t, root, filepath.Dir(name))
	if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
		t.Fatal(err)
	}
}

// listing describes every entry of a tree: type, mode, content sum or
// symlink target.
func listing(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "link " + target
		case d.IsDir():
			out[rel] = fmt.Sprintf("dir %v", info.Mode().Perm())
		default:
			b, _ := os.ReadFile(p)
			out[rel] = fmt.Sprintf("file %v %x", info.Mode().Perm(), sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameListing(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s: was %q, now %q", p, v, after[p])
		}
	}
	for p, v := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s (%s) is new", p, v)
		}
	}
}

func open(t *testing.T, dir string) *guest.Guest {
	t.Helper()
	target, err := guest.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func apply(t *testing.T, dir string, planFor func(*guest.Guest) (*Plan, error)) *Plan {
	t.Helper()
	target := open(t, dir)
	p, err := planFor(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := target.Apply(p.Changes, p.command); err != nil {
		t.Fatal(err)
	}
	return p
}

func injectWith(opt Options) func(*guest.Guest) (*Plan, error) {
	return func(g *guest.Guest) (*Plan, error) { return PlanInject(g, opt) }
}

func status(t *testing.T, dir, id string) lint.Status {
	t.Helper()
	for _, o := range lint.Run(lint.NewTarget(open(t, dir)), lint.Catalog(), nil).Outcomes {
		if o.ID == id {
			return o.Status
		}
	}
	t.Fatalf("no %s in the catalog", id)
	return ""
}

func TestInjectIntoDirectoryThenRemove(t *testing.T) {
	d := systemdTree(t)
	before := listing(t, d)
	if got := status(t, d, "AGT001"); got != lint.Failed {
		t.Fatalf("AGT001 before inject: %v", got)
	}
	bin := testagent.Binary(t)
	p := apply(t, d, injectWith(Options{Binary: bin}))
	if p.Arch != hostArch || len(p.Agents) != 0 {
		t.Fatalf("plan arch %q agents %v", p.Arch, p.Agents)
	}
	if got := status(t, d, "AGT001"); got != lint.Passed {
		t.Fatalf("AGT001 after inject: %v", got)
	}
	got, err := os.ReadFile(filepath.Join(d, "usr/sbin/vhdprep-agent"))
	if err != nil || string(got) != string(bin) {
		t.Fatalf("the agent binary is not what was given (%v)", err)
	}
	after := listing(t, d)
	for name, want := range map[string]string{
		"usr/sbin/vhdprep-agent":                                             "file -rwxr-xr-x",
		"usr/lib/systemd/system/" + layout.ProvisionUnit:                     "file -rw-r--r--",
		"usr/lib/systemd/system/" + layout.DaemonUnit:                        "file -rw-r--r--",
		"etc/vhdprep-agent.conf":                                             "file -rw-r--r--",
		"etc/systemd/system/multi-user.target.wants/" + layout.ProvisionUnit: "link /usr/lib/systemd/system/" + layout.ProvisionUnit,
		"etc/systemd/system/multi-user.target.wants/" + layout.DaemonUnit:    "link /usr/lib/systemd/system/" + layout.DaemonUnit,
		"var/lib/vhdprep-agent/inject.json":                                  "file -rw-r--r--",
	} {
		if !strings.HasPrefix(after[name], want) {
			t.Errorf("%s: %q, want %s", name, after[name], want)
		}
	}
	conf, _ := os.ReadFile(filepath.Join(d, "etc/vhdprep-agent.conf"))
	if string(conf) != layout.DefaultConfigText {
		t.Errorf("config:\n%s", conf)
	}
	unit, _ := os.ReadFile(filepath.Join(d, "usr/lib/systemd/system", layout.ProvisionUnit))
	for _, line := range []string{"Type=oneshot", "After=network-online.target", "Wants=network-online.target", "ExecStart=/usr/sbin/vhdprep-agent provision", "TimeoutStartSec=21min", "Before=systemd-user-sessions.service ssh.service ssh.socket sshd.service", "StandardOutput=journal+console"} {
		if !strings.Contains(string(unit), line+"\n") {
			t.Errorf("%s lacks %q", layout.ProvisionUnit, line)
		}
	}
	unit, _ = os.ReadFile(filepath.Join(d, "usr/lib/systemd/system", layout.DaemonUnit))
	for _, line := range []string{"ExecStart=/usr/sbin/vhdprep-agent daemon", "Restart=always", "KillMode=process"} {
		if !strings.Contains(string(unit), line+"\n") {
			t.Errorf("%s lacks %q", layout.DaemonUnit, line)
		}
	}

	if again := apply(t, d, injectWith(Options{Binary: bin})); len(again.Changes) != 0 {
		t.Fatalf("a second inject changed %+v", again.Changes)
	}
	sameListing(t, after, listing(t, d))

	apply(t, d, PlanRemove)
	sameListing(t, before, listing(t, d))
	if _, err := PlanRemove(open(t, d)); err == nil || !strings.Contains(err.Error(), "nothing to remove") {
		t.Fatalf("remove without a record: %v", err)
	}
}

func TestInjectKeepsAnExistingConfigAndRestoresReplacedFiles(t *testing.T) {
	d := systemdTree(t)
	writeFile(t, d, "etc/vhdprep-agent.conf", "ResourceDisk.Format=y\n", 0o600)
	writeFile(t, d, "usr/sbin/vhdprep-agent", "an older agent", 0o700)
	before := listing(t, d)
	apply(t, d, injectWith(Options{Binary: testagent.Binary(t)}))
	if conf, _ := os.ReadFile(filepath.Join(d, "etc/vhdprep-agent.conf")); string(conf) != "ResourceDisk.Format=y\n" {
		t.Fatalf("inject changed an existing config: %q", conf)
	}
	apply(t, d, PlanRemove)
	sameListing(t, before, listing(t, d))
}

func TestOtherAgentsAreRefusedOrReplaced(t *testing.T) {
	d := systemdTree(t)
	writeFile(t, d, "usr/lib/systemd/system/walinuxagent.service", "[Service]\n", 0o644)
	symlink(t, d, "/usr/lib/systemd/system/walinuxagent.service", "etc/systemd/system/multi-user.target.wants/walinuxagent.service")
	writeFile(t, d, "usr/lib/systemd/system/azure-init.service", "[Service]\n", 0o644)
	symlink(t, d, "../azure-init.service", "usr/lib/systemd/system/multi-user.target.wants/azure-init.service")
	writeFile(t, d, "etc/cloud/cloud.cfg", "datasource_list: [ NoCloud ]\n", 0o644)
	writeFile(t, d, "etc/cloud/cloud.cfg.d/90-azure.cfg", "datasource_list: [ Azure ]\n", 0o644)
	writeFile(t, d, "usr/lib/systemd/system/cloud-init.service", "[Service]\n", 0o644)
	symlink(t, d, "/usr/lib/systemd/system/cloud-init.service", "etc/systemd/system/cloud-init.target.wants/cloud-init.service")
	before := listing(t, d)

	_, err := PlanInject(open(t, d), Options{Binary: testagent.Binary(t)})
	if err == nil || !strings.Contains(err.Error(), "WALinuxAgent and azure-init and cloud-init starts at boot") || !strings.Contains(err.Error(), "--replace-waagent") {
		t.Fatalf("inject beside other agents: %v", err)
	}
	sameListing(t, before, listing(t, d))

	p := apply(t, d, injectWith(Options{Binary: testagent.Binary(t), ReplaceAgents: true}))
	if strings.Join(p.Agents, ",") != "WALinuxAgent,azure-init,cloud-init" {
		t.Fatalf("disabled %v", p.Agents)
	}
	after := listing(t, d)
	if _, ok := after["etc/systemd/system/multi-user.target.wants/walinuxagent.service"]; ok {
		t.Error("WALinuxAgent's enable link is still there")
	}
	if _, ok := after["usr/lib/systemd/system/multi-user.target.wants/azure-init.service"]; ok {
		t.Error("azure-init's package enable link is still there")
	}
	if after["etc/systemd/system/azure-init.service"] != "link /dev/null" {
		t.Errorf("azure-init, enabled by its package, is not masked: %q", after["etc/systemd/system/azure-init.service"])
	}
	if !strings.HasPrefix(after["etc/cloud/cloud-init.disabled"], "file") {
		t.Error("no /etc/cloud/cloud-init.disabled")
	}
	if _, ok := after["etc/systemd/system/cloud-init.target.wants/cloud-init.service"]; ok {
		t.Error("cloud-init's enable link is still there")
	}
	// check agrees: one agent provisions, and it is ours.
	if a1, a6 := status(t, d, "AGT001"), status(t, d, "AGT006"); a1 != lint.Passed || a6 != lint.Passed {
		t.Errorf("after inject --replace-waagent: AGT001 %s, AGT006 %s", a1, a6)
	}
	if again := apply(t, d, injectWith(Options{Binary: testagent.Binary(t)})); len(again.Changes) != 0 {
		t.Fatalf("a second inject (without --replace-waagent) changed %+v", again.Changes)
	}
	r := apply(t, d, PlanRemove)
	if len(r.Agents) != 3 {
		t.Errorf("remove enables again %v", r.Agents)
	}
	sameListing(t, before, listing(t, d))
}

// cloud-init whose datasources leave Azure out is no rival to inject, nor
// a second provisioner to check's AGT006 (they once disagreed: inject left
// it enabled and AGT006 failed afterwards).
func TestCloudInitWithoutAzureIsNoRival(t *testing.T) {
	d := systemdTree(t)
	writeFile(t, d, "etc/cloud/cloud.cfg", "datasource_list: [ NoCloud, None ]\n", 0o644)
	symlink(t, d, "/usr/lib/systemd/system/cloud-init.service", "etc/systemd/system/cloud-init.target.wants/cloud-init.service")
	before := listing(t, d)
	p := apply(t, d, injectWith(Options{Binary: testagent.Binary(t)}))
	// check agrees: cloud-init does not provision on Azure, so the vhdprep
	// agent is the one provisioner, as inject claims.
	if err := lint.VerifyGuest(open(t, d), commandInject, p.Claimed()); err != nil {
		t.Fatalf("after inject beside cloud-init without Azure: %v", err)
	}
	apply(t, d, PlanRemove)
	sameListing(t, before, listing(t, d))
	writeFile(t, d, "etc/cloud/cloud.cfg.d/99-x.cfg", "growpart: {mode: auto}\n", 0o644)
	os.Remove(filepath.Join(d, "etc/cloud/cloud.cfg"))
	if _, err := PlanInject(open(t, d), Options{Binary: testagent.Binary(t)}); err == nil {
		t.Fatal("cloud-init with its default datasources (Azure among them) was not refused")
	}
}

func TestRefusals(t *testing.T) {
	d := systemdTree(t)
	os.Remove(filepath.Join(d, "usr/sbin/init"))
	os.Remove(filepath.Join(d, "usr/lib/systemd/systemd"))
	writeFile(t, d, "sbin/openrc", "", 0o755)
	if _, err := PlanInject(open(t, d), Options{Binary: testagent.Binary(t)}); err == nil || !strings.Contains(err.Error(), "init system is openrc") {
		t.Fatalf("openrc guest: %v", err)
	}

	d = systemdTree(t)
	if _, err := PlanInject(open(t, d), Options{Binary: []byte("#!/bin/sh\n")}); err == nil || !strings.Contains(err.Error(), "not an ELF executable") {
		t.Fatalf("a script as the agent: %v", err)
	}
	if _, err := PlanInject(open(t, d), Options{Binary: true_(t)}); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("a dynamically linked agent: %v", err)
	}
	other := map[string]string{"x86_64": "aarch64", "aarch64": "x86_64"}[hostArch]
	if err := CheckBinary(testagent.Binary(t), other); err == nil || !strings.Contains(err.Error(), "GOARCH=") {
		t.Fatalf("a %s binary for a %s guest: %v", hostArch, other, err)
	}
	if _, err := EmbeddedBinary("riscv64"); err == nil || !strings.Contains(err.Error(), "riscv64") {
		t.Fatalf("riscv64: %v", err)
	}
}

// The agents are there after `make build` (and in cmd/vhdprep's tests,
// which build them); without them the error says how to get them.
func TestEmbeddedBinary(t *testing.T) {
	for arch, ga := range goarch {
		b, err := EmbeddedBinary(arch)
		if err != nil {
			if !strings.Contains(err.Error(), "run 'make build', or pass --agent-binary PATH") {
				t.Fatalf("%s: %v", arch, err)
			}
			continue
		}
		if err := CheckBinary(b, arch); err != nil {
			t.Fatalf("the embedded %s agent: %v", ga.name, err)
		}
	}
}

func TestUnitsInLibWhenUsrIsNotMerged(t *testing.T) {
	d := systemdTree(t)
	os.Remove(filepath.Join(d, "lib"))
	mkdir(t, d, "lib/systemd/system")
	p := apply(t, d, injectWith(Options{Binary: testagent.Binary(t)}))
	if _, err := os.Stat(filepath.Join(d, "lib/systemd/system", layout.DaemonUnit)); err != nil {
		t.Fatalf("%v; changes %+v", err, p.Changes)
	}
	if target, _ := os.Readlink(filepath.Join(d, "etc/systemd/system/multi-user.target.wants", layout.DaemonUnit)); target != "/lib/systemd/system/"+layout.DaemonUnit {
		t.Fatalf("enable link -> %q", target)
	}
}

// Inject says what the agent will do with the resource disk: WALinuxAgent's
// shipped default (format and mount at /mnt/resource), or what an existing
// configuration says.
func TestInjectSaysWhatTheResourceDiskGets(t *testing.T) {
	d := systemdTree(t)
	p, err := PlanInject(open(t, d), Options{Binary: testagent.Binary(t)})
	if err != nil {
		t.Fatal(err)
	}
	if want := "formatted ext4 when blank or NTFS, and mounted at /mnt/resource"; p.ResourceDisk != want {
		t.Errorf("default: %q, want %q", p.ResourceDisk, want)
	}
	writeFile(t, d, "etc/vhdprep-agent.conf", "ResourceDisk.Format=n\n", 0o644)
	if p, err = PlanInject(open(t, d), Options{Binary: testagent.Binary(t)}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.ResourceDisk, "left alone (ResourceDisk.Format=n") {
		t.Errorf("Format=n: %q", p.ResourceDisk)
	}
	writeFile(t, d, "etc/vhdprep-agent.conf", "ResourceDisk.MountPoint=/mnt\nResourceDisk.EnableSwap=y\nResourceDisk.SwapSizeMB=2048\n", 0o644)
	if p, err = PlanInject(open(t, d), Options{Binary: testagent.Binary(t)}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.ResourceDisk, "mounted at /mnt, with a 2048 MiB swap file") {
		t.Errorf("swap: %q", p.ResourceDisk)
	}
}

// The agent ejects the provisioning media with the guest's eject, as
// WALinuxAgent does; inject says when the image has none.
func TestInjectSaysWhetherTheMediaIsEjected(t *testing.T) {
	for _, c := range []struct {
		eject string // where the image has eject; "" for nowhere
		want  string
	}{
		{"", "left in the drive, with the ovf-env.xml Azure wrote for the VM: the image has no eject program (install eject)"},
		{"usr/bin/eject", "ejected once the VM is provisioned"},
		{"bin/eject", "ejected once the VM is provisioned"}, // through the /bin link of a merged /usr
	} {
		d := systemdTree(t)
		if c.eject != "" {
			writeFile(t, d, c.eject, "", 0o755)
		}
		p, err := PlanInject(open(t, d), Options{Binary: testagent.Binary(t)})
		if err != nil {
			t.Fatal(err)
		}
		if p.Media != c.want {
			t.Errorf("eject at %q: inject says the media is %q, want %q", c.eject, p.Media, c.want)
		}
	}
}

// Inject and Remove, the verbs behind agent inject and remove: a dry run
// changes nothing; a real run writes the plan and holds it to its claims.
func TestInjectAndRemoveVerbs(t *testing.T) {
	d := systemdTree(t)
	before := listing(t, d)
	opener := guest.Opener("", d)
	res, err := Inject(context.Background(), opener, true, Options{Binary: testagent.Binary(t)})
	if err != nil || res.Refused != nil || len(res.Plan.Changes) == 0 {
		t.Fatalf("dry run: %v %+v", err, res)
	}
	sameListing(t, before, listing(t, d))
	if _, err := Inject(context.Background(), opener, false, Options{Binary: testagent.Binary(t), Verify: lint.VerifyGuest}); err != nil {
		t.Fatal(err)
	}
	if got := status(t, d, "AGT001"); got != lint.Passed {
		t.Fatalf("AGT001 after Inject: %v", got)
	}
	if _, err := Remove(context.Background(), opener, false); err != nil {
		t.Fatal(err)
	}
	sameListing(t, before, listing(t, d))
}
