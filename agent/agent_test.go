package agent

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/agent/firewall"
	"github.com/vhdprep/vhdprep/agent/kvp"
	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/agent/provision"
	"github.com/vhdprep/vhdprep/agent/provision/provisiontest"
	"github.com/vhdprep/vhdprep/agent/wire"
	"github.com/vhdprep/vhdprep/internal/wiresim"
)

const ovfEnv = `<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure">
<wa:ProvisioningSection><wa:Version>1.0</wa:Version>
<LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">
<ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
<HostName>e2e-vm</HostName><UserName>azureuser</UserName>
<DisableSshPasswordAuthentication>true</DisableSshPasswordAuthentication>
<SSH><PublicKeys><PublicKey><Fingerprint>EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62</Fingerprint><Path>/home/azureuser/.ssh/authorized_keys</Path>
<Value>ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEnb2K2VZb1u0J6k5zGqWv1xF2J0x3l8ZC7bX1ZcHq9J e2e@example</Value></PublicKey></PublicKeys></SSH>
<CustomData>IyEvYmluL3NoCg==</CustomData>
</LinuxProvisioningConfigurationSet></wa:ProvisioningSection>
<wa:PlatformSettingsSection><wa:Version>1.0</wa:Version><wa:PlatformSettings><wa:ProvisionGuestAgent>true</wa:ProvisionGuestAgent></wa:PlatformSettings></wa:PlatformSettingsSection>
</Environment>`

type env struct {
	sim   *wiresim.Server
	sys   *provisiontest.System
	agent *Agent
	root  string
}

// newEnv is a VM: a root with sshd and a provisioning CD-ROM, the test
// System, and the simulated wire server.
func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	media := t.TempDir()
	for rel, data := range map[string]string{
		"etc/ssh/sshd_config":       "Include /etc/ssh/sshd_config.d/*.conf\n",
		"dev/sr0":                   "",
		"sys/block/sr0/device/type": "5\n",
	} {
		mustWrite(t, filepath.Join(root, rel), data)
	}
	mustWrite(t, filepath.Join(media, "ovf-env.xml"), ovfEnv)
	sys := provisiontest.New(root, provisiontest.Debian...)
	sys.Media[filepath.Join(root, "dev/sr0")] = media
	sim := wiresim.New()
	t.Cleanup(sim.Close)
	return &env{sim: sim, sys: sys, root: root, agent: newAgent(root, sys, sim)}
}

func newAgent(root string, sys provision.System, sim *wiresim.Server) *Agent {
	return &Agent{
		Config:         layout.DefaultConfig(),
		Prov:           &provision.Provisioner{Root: root, Sys: sys},
		Wire:           wire.New(sim.Endpoint(), wire.Options{Retry: wire.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 5}}),
		PollInterval:   5 * time.Millisecond,
		ReportInterval: time.Hour,
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func states(h []wiresim.HealthReport) string {
	var s []string
	for _, r := range h {
		x := r.State
		if r.SubStatus != "" {
			x += "/" + r.SubStatus
		}
		s = append(s, x+"@"+r.Incarnation)
	}
	return strings.Join(s, " ")
}

func TestProvisionThenReady(t *testing.T) {
	e := newEnv(t)
	e.sim.SetIncarnation(3)
	o, err := e.agent.Provision(context.Background())
	if err != nil || o != Provisioned {
		t.Fatalf("Provision = %v, %v", o, err)
	}
	if got := states(e.sim.Health()); got != "NotReady/Provisioning@3 Ready@3" {
		t.Errorf("reports: %s", got)
	}
	if e.sys.Hostname() != "e2e-vm" {
		t.Errorf("hostname %q", e.sys.Hostname())
	}
	if b, err := os.ReadFile(filepath.Join(e.root, "home/azureuser/.ssh/authorized_keys")); err != nil || !strings.Contains(string(b), "e2e@example") {
		t.Errorf("authorized_keys %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(e.root, layout.MarkerFile)); err != nil || strings.TrimSpace(string(b)) != "d0df4c54-4ecb-4a4b-9954-5bdf3ed5c3b8" {
		t.Errorf("marker %q, %v", b, err)
	}
}

func TestProvisioningFailedReported(t *testing.T) {
	e := newEnv(t)
	e.sys.Fail["useradd"] = errors.New("useradd: cannot lock /etc/passwd")
	_, err := e.agent.Provision(context.Background())
	var se *provision.StepError
	if !errors.As(err, &se) || se.Step != "user" {
		t.Fatalf("err = %v, want the user step's failure", err)
	}
	h := e.sim.Health()
	if got := states(h); got != "NotReady/Provisioning@1 NotReady/ProvisioningFailed@1" {
		t.Fatalf("reports: %s", got)
	}
	if !strings.Contains(h[1].Description, "cannot lock /etc/passwd") || !strings.Contains(h[1].Description, "step user") {
		t.Errorf("description %q lacks the reason", h[1].Description)
	}
	if _, err := os.Stat(filepath.Join(e.root, layout.MarkerFile)); !os.IsNotExist(err) {
		t.Error("a failed provisioning wrote the marker")
	}
}

func TestRetriedAfter503(t *testing.T) {
	e := newEnv(t)
	e.sim.Fail(1, 503, "/machine")
	if _, err := e.agent.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := states(e.sim.Health()); got != "NotReady/Provisioning@1 Ready@1" {
		t.Errorf("reports: %s", got)
	}
	if r := e.sim.Requests(); r[0].Status != 503 {
		t.Errorf("first request answered %d, want the injected 503", r[0].Status)
	}
}

func TestSecondBootAndClone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.agent.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	calls := len(e.sys.Calls())

	// Second boot: same VM, Ready without provisioning again.
	e.sim.SetIncarnation(2)
	o, err := newAgent(e.root, e.sys, e.sim).Provision(ctx)
	if err != nil || o != AlreadyProvisioned {
		t.Fatalf("second boot: %v, %v", o, err)
	}
	if got := states(e.sim.Health()); got != "NotReady/Provisioning@1 Ready@1 Ready@2" {
		t.Errorf("reports: %s", got)
	}
	if len(e.sys.Calls()) != calls {
		t.Errorf("second boot ran %v", e.sys.Calls()[calls:])
	}

	// The image cloned into a new VM: a new VM ID provisions again.
	e.sys.UUID = "11111111-2222-3333-4444-555555555555"
	e.sys.Fail["useradd"] = nil
	o, err = newAgent(e.root, e.sys, e.sim).Provision(ctx)
	if err != nil || o != Provisioned {
		t.Fatalf("new VM: %v, %v", o, err)
	}
	if got := states(e.sim.Health()); !strings.HasSuffix(got, "Ready@2 NotReady/Provisioning@2 Ready@2") {
		t.Errorf("reports: %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(e.root, layout.MarkerFile)); strings.TrimSpace(string(b)) != "11111111-2222-3333-4444-555555555555" {
		t.Errorf("marker %q", b)
	}
}

func TestProvisioningDisabled(t *testing.T) {
	e := newEnv(t)
	e.agent.Config.ProvisioningEnabled = false
	e.sys.UUID = ""
	if o, err := e.agent.Provision(context.Background()); err != nil || o != ProvisioningOff {
		t.Fatalf("Provision = %v, %v", o, err)
	}
	if got := states(e.sim.Health()); got != "Ready@1" || len(e.sys.Calls()) != 0 {
		t.Errorf("reports %s, calls %v", got, e.sys.Calls())
	}
}

// The daemon reports Ready, then again for each new incarnation; a
// provisioning failure keeps being reported.
func TestDaemon(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.agent.Daemon(ctx) }()
	waitFor(t, func() bool { return states(e.sim.Health()) == "NotReady/Provisioning@1 Ready@1" })
	e.sim.SetIncarnation(2)
	waitFor(t, func() bool { return strings.HasSuffix(states(e.sim.Health()), "Ready@1 Ready@2") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	f := newEnv(t)
	f.sys.Fail["useradd"] = errors.New("no space left")
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- f.agent.Daemon(ctx) }()
	waitFor(t, func() bool { return strings.HasSuffix(states(f.sim.Health()), "ProvisioningFailed@1") })
	f.sim.SetIncarnation(5)
	waitFor(t, func() bool {
		return strings.HasSuffix(states(f.sim.Health()), "ProvisioningFailed@1 NotReady/ProvisioningFailed@5")
	})
	cancel()
	<-done
	if h := f.sim.Health(); !strings.Contains(h[len(h)-1].Description, "no space left") {
		t.Errorf("description %q", h[len(h)-1].Description)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// The daemon publishes a host name changed after provisioning, as
// WALinuxAgent's Provisioning.MonitorHostName, and not with it off.
func TestDaemonPublishesARename(t *testing.T) {
	for _, monitor := range []bool{true, false} {
		e := newEnv(t)
		for rel, data := range map[string]string{
			"proc/sys/kernel/hostname":   "image\n",
			"proc/net/route":             "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nens3\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\n",
			"sys/class/net/ens3/ifindex": "2\n",
			"run/systemd/netif/links/2":  "ADMIN_STATE=configured\n",
		} {
			mustWrite(t, filepath.Join(e.root, rel), data)
		}
		e.sys.Tools["networkctl"] = true
		e.agent.Config.MonitorHostName = monitor
		reconfigures := func() (n int) {
			for _, c := range e.sys.Calls() {
				if c.Name == "networkctl" {
					n++
				}
			}
			return n
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- e.agent.Daemon(ctx) }()
		waitFor(t, func() bool { return strings.HasSuffix(states(e.sim.Health()), "Ready@1") })
		if n := reconfigures(); n != 1 {
			t.Errorf("monitor %v: provisioning renewed the lease %d times, want once", monitor, n)
		}
		mustWrite(t, filepath.Join(e.root, "proc/sys/kernel/hostname"), "renamed\n")
		if monitor {
			waitFor(t, func() bool { return reconfigures() == 2 })
		} else {
			time.Sleep(50 * time.Millisecond) // ten polls
		}
		cancel()
		<-done
		if want := map[bool]int{true: 2, false: 1}[monitor]; reconfigures() != want {
			t.Errorf("monitor %v: %d renewals in all, want %d", monitor, reconfigures(), want)
		}
	}
}

// The daemon guards the wire server before its first request, and with
// Firewall.Enabled=n takes the rules away.
func TestDaemonGuardsTheWireServer(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		e := newEnv(t)
		e.sys.Tools["nft"] = true
		e.agent.Config.FirewallEnabled = enabled
		e.agent.Firewall = &firewall.Guard{Sys: e.sys, WireServer: netip.MustParseAddr("168.63.129.16")}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- e.agent.Daemon(ctx) }()
		waitFor(t, func() bool { return len(e.sim.Health()) > 0 })
		cancel()
		<-done
		var nft []string
		for _, c := range e.sys.Calls() {
			if c.Name == "nft" {
				nft = append(nft, c.Stdin)
			}
		}
		if len(nft) != 1 {
			t.Fatalf("enabled %v: nft ran %d times, want once", enabled, len(nft))
		}
		if got := strings.Contains(nft[0], "skuid != 0 ct state invalid,new counter drop"); got != enabled {
			t.Errorf("enabled %v: nft got\n%s", enabled, nft[0])
		}
	}
}

// The provisioning media is ejected once provisioning succeeded (not
// before, nor after a failure: the next boot reads it again), and left in
// when the image has no eject tool.
func TestProvisioningMediaEjectedAfterSuccess(t *testing.T) {
	ejects := func(e *env) []string {
		var got []string
		for _, c := range e.sys.Calls() {
			if c.Name == "eject" {
				got = append(got, strings.Join(c.Args, " "))
			}
		}
		return got
	}
	e := newEnv(t)
	e.sys.Tools["eject"] = true
	if _, err := e.agent.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ejects(e); len(got) != 1 || got[0] != "/dev/sr0" {
		t.Errorf("ejects %q, want /dev/sr0 once", got)
	}
	if c := e.sys.Calls(); c[len(c)-1].Name != "eject" {
		t.Errorf("last call %v, want eject after every step", c[len(c)-1])
	}

	f := newEnv(t)
	f.sys.Tools["eject"] = true
	f.sys.Fail["useradd"] = errors.New("no space left")
	f.agent.Provision(context.Background())
	if got := ejects(f); len(got) != 0 {
		t.Errorf("failed provisioning ejected %q", got)
	}

	g := newEnv(t)
	delete(g.sys.Tools, "eject")
	if _, err := g.agent.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ejects(g); len(got) != 0 {
		t.Errorf("without eject: ran %q", got)
	}
}

// Provisioning's progress and failure reach the host through KVP, keyed by
// the VM ID, so a VM without network is still diagnosable.
func TestProvisioningReportedToKVP(t *testing.T) {
	read := func(e *env) []string {
		b, err := os.ReadFile(filepath.Join(e.root, kvp.PoolFile))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := 0; i+kvp.RecordSize <= len(b); i += kvp.RecordSize {
			k, v, _ := kvp.Decode(b[i : i+kvp.RecordSize])
			got = append(got, k+" = "+v)
		}
		return got
	}
	e := newEnv(t)
	e.agent.KVP = &kvp.Writer{Path: filepath.Join(e.root, kvp.PoolFile), Source: "vhdprep-agent-test"}
	if _, err := e.agent.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := read(e)
	if len(got) != 2 || !strings.HasPrefix(got[0], "vhdprep-agent-test|d0df4c54-4ecb-4a4b-9954-5bdf3ed5c3b8|INFO|provisioning|1 = ") ||
		!strings.Contains(got[1], "provisioning done; settings from ovf-env.xml on /dev/sr0") {
		t.Errorf("KVP records:\n%s", strings.Join(got, "\n"))
	}
	f := newEnv(t)
	f.agent.KVP = &kvp.Writer{Path: filepath.Join(f.root, kvp.PoolFile), Source: "vhdprep-agent-test"}
	f.sys.Fail["useradd"] = errors.New("no space left")
	f.agent.Provision(context.Background())
	got = read(f)
	if last := got[len(got)-1]; !strings.Contains(last, "|ERROR|provisioning|") || !strings.Contains(last, "no space left") {
		t.Errorf("KVP records:\n%s", strings.Join(got, "\n"))
	}
}
