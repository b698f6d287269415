//go:build e2e

// Package e2e is the end-to-end proof: a real Debian 12 image, built from
// Debian's packages, goes through check, fix, agent inject and convert,
// then boots in QEMU as an Azure Gen1 VM would, against the wire server
// simulator the agent's unit tests use, reached at 168.63.129.16 through
// QEMU's user-mode network. Run it with `make e2e` (root: debootstrap).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/internal/wiresim"
)

// Each stage's bound, sized for software emulation (TCG) on a loaded
// 2-core machine: a stage that runs past it fails, naming itself. Measured
// with ten times more runnable work than cores (load 20), a boot to Ready
// took 8 minutes, the reboot 6 and the accelerator probes 1.5.
const (
	buildBound   = 20 * time.Minute // debootstrap downloads about 150 MB when the cache is cold
	accelBound   = 8 * time.Minute  // the probes, under TCG where KVM is absent or fails
	commandBound = 3 * time.Minute  // one vhdprep command on the 2 GiB image
	bootBound    = 15 * time.Minute // a TCG boot to Ready, or a silent KVM boot and then that
	sshBound     = 5 * time.Minute
	extBound     = 8 * time.Minute // download, install and enable of the extension
	rebootBound  = 18 * time.Minute
)

// The virtual machine as ovf-env.xml describes it.
const (
	vmHostName = "vhdprep-e2e-vm"
	// vmNewHostName is the name the VM is given after provisioning.
	vmNewHostName = "vhdprep-e2e-renamed"
	vmUser        = "azureadmin"
)

func TestImageGoesFromDebootstrapToRunningExtensions(t *testing.T) {
	testimage.RequireTools(t, "debootstrap", "qemu-system-x86_64", "socat", "genisoimage", "openssl", "sfdisk", "mkfs.ext4")
	if os.Getuid() != 0 {
		t.Fatal("the end-to-end test builds its image with debootstrap, which needs root: run make e2e as root")
	}
	vhdprep := os.Getenv("VHDPREP")
	if vhdprep == "" {
		t.Fatal("VHDPREP names the vhdprep binary to test (make e2e sets it)")
	}
	work := t.TempDir()
	raw, vhd := filepath.Join(work, "debian.raw"), filepath.Join(work, "debian.vhd")
	stages := &timings{}
	t.Cleanup(func() { stages.print(t) })

	stages.run(t, "build", buildBound, func(ctx context.Context) {
		cmd := exec.CommandContext(ctx, "./build-image.sh", testimage.CacheDir(t, "e2e"), raw)
		cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
		// At the bound the whole job gets SIGTERM, so the script's trap
		// unmounts what debootstrap mounted before it ends.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
		cmd.WaitDelay = 30 * time.Second
		if err := cmd.Run(); err != nil {
			t.Fatalf("building the Debian image: %v", err)
		}
	})

	stages.run(t, "accelerator", accelBound, func(context.Context) {
		kernel, initrd := imageKernel(t, vhdprep, raw, work), probeInitramfs(t, work)
		a, why := chooseAccel(t, kernel, initrd)
		t.Logf("accelerator: %s: %s", a.name, why)
		stages.accel, stages.accelWhy = a, why
		testWatchdog(t, kernel, initrd, work)
	})

	stages.run(t, "check", commandBound, func(ctx context.Context) {
		out, code := run(ctx, t, vhdprep, "check", "--output", "json", raw)
		if code != 1 {
			t.Fatalf("check on the stock image exited %d, want 1:\n%s", code, out)
		}
		status := ruleStatuses(t, out)
		for _, id := range []string{"KRN001", "AGT001"} {
			if status[id] != "fail" {
				t.Errorf("check on the stock image did not find %s: %s", id, status[id])
			}
		}
		// Debian's cloud kernel has the Hyper-V drivers as modules, which
		// the initramfs of its IDE build host lacks: read for real. fix
		// adds them, and the VM boots with it.
		if status["KRN010"] != "pass" {
			t.Errorf("KRN010 on the real kernel: %s, want pass", status["KRN010"])
		}
		for _, id := range []string{"DRV001", "DRV002", "DRV003", "DRV008"} {
			if status[id] != "fail" {
				t.Errorf("%s on the build host's initramfs: %s, want fail", id, status[id])
			}
		}
	})

	// inject first, so that fix sees the agent that will run at boot (SWP002, SWP003, AGT006).
	stages.run(t, "inject", commandBound, func(ctx context.Context) { mustRun(ctx, t, vhdprep, "agent", "inject", raw) })
	stages.run(t, "fix", commandBound, func(ctx context.Context) {
		mustRun(ctx, t, vhdprep, "fix", raw)
		// VHD001 (the container) is the next stage's business.
		if out, code := run(ctx, t, vhdprep, "check", "--fail-on", "error", "--disable", "VHD001", raw); code != 0 {
			t.Fatalf("check after fix and inject exited %d:\n%s", code, out)
		}
	})

	stages.run(t, "convert", commandBound, func(ctx context.Context) {
		mustRun(ctx, t, vhdprep, "convert", raw, vhd)
		var info struct {
			Format     string `json:"format"`
			MiBAligned bool   `json:"mib_aligned"`
			Valid      bool   `json:"valid_for_azure"`
		}
		if err := json.Unmarshal([]byte(mustRun(ctx, t, vhdprep, "info", "--output", "json", vhd)), &info); err != nil {
			t.Fatal(err)
		}
		if info.Format != "vhd-fixed" || !info.MiBAligned || !info.Valid {
			t.Fatalf("info on the converted image: %+v", info)
		}
		if out, code := run(ctx, t, vhdprep, "check", "--fail-on", "error", vhd); code != 0 {
			t.Fatalf("check on the VHD exited %d:\n%s", code, out)
		}
		os.Remove(raw) // 2 GiB the rest of the run does not need
	})

	sim, err := wiresim.NewAtWithHostPlugin("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.SetAdvertisedURL("http://" + wireServerIP)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("wire server requests (last 40):\n%s", requestLog(sim, 40))
		}
	})

	key := newSSHKey(t)
	const password = "E2e-Passw0rd!"
	iso := provisioningISO(t, work, ovfEnv(vmHostName, vmUser, password, key.authorizedKey()))
	vm := &machine{t: t, disk: vhd, iso: iso, dir: work, sim: sim, watchdog: watchdog{accel: stages.accel, silence: kvmSilence},
		vmID: "7f3c2b1a-4d5e-4f60-8a9b-0c1d2e3f4a5b"}
	stages.machine = vm

	stages.run(t, "boot to Ready", bootBound, func(ctx context.Context) {
		vm.start("boot-1")
		vm.waitReady(ctx, 1, 0)
		serial := vm.serialLog()
		if !strings.Contains(serial, "Linux version") || !strings.Contains(serial, "console=ttyS0") {
			t.Fatalf("the serial log lacks the kernel's boot messages: the console= fix did not take effect")
		}
	})

	stages.run(t, "ssh", sshBound, func(ctx context.Context) {
		c := vm.ssh(ctx, vmUser, key.auth())
		if got := strings.TrimSpace(c.run("hostname")); got != vmHostName {
			t.Errorf("hostname %q, want %q from ovf-env.xml", got, vmHostName)
		}
		if got := strings.TrimSpace(c.runInput(password+"\n", "sudo -S -p '' id -u")); got != "0" {
			t.Errorf("sudo as %s: %q, want 0", vmUser, got)
		}
		// The name reached the DHCP server (Azure's DNS): the boot's
		// requests said the image's name, the agent's renewal says the new one.
		if names := dhcpHostNames(t, vm.pcap); !slices.Contains(names, vmHostName) {
			t.Errorf("no DHCP request carried the host name %q; they said %q", vmHostName, names)
		}
		// The provisioning media is ejected once provisioning is done
		// (QEMU keeps the medium in the open tray, so the log tells).
		if !strings.Contains(vm.serialLog(), "provisioning media ejected") {
			t.Errorf("the provisioning unit's log does not say the media was ejected")
		}
		c.close()
		// ovf-env.xml left password authentication on, with a password.
		p := vm.ssh(ctx, vmUser, passwordAuth(password))
		p.close()
	})

	stages.run(t, "wire server guard", sshBound, func(ctx context.Context) {
		c := vm.ssh(ctx, vmUser, key.auth())
		defer c.close()
		checkWireServerGuard(ctx, t, vm, c, password)
	})

	stages.run(t, "host name change", sshBound, func(ctx context.Context) {
		c := vm.ssh(ctx, vmUser, key.auth())
		defer c.close()
		// The daemon notices at its next poll and publishes it through DHCP.
		c.runInput(password+"\n", "sudo -S -p '' hostnamectl set-hostname "+vmNewHostName)
		vm.waitFor(ctx, "a DHCP request with the new host name", func() bool {
			return slices.Contains(dhcpHostNames(t, vm.pcap), vmNewHostName)
		})
	})

	ext := newExtension(t, sim, work)
	stages.run(t, "extension to success", extBound, func(ctx context.Context) {
		c := vm.ssh(ctx, vmUser, key.auth())
		defer c.close()
		// A short enable limit, so that the script outliving it is quick
		// to prove: CustomScript's worker runs on, detached, and reports.
		c.runInput(password+"\n", fmt.Sprintf("sudo -S -p '' sh -c 'echo Extensions.EnableTimeout=%d >> /etc/vhdprep-agent.conf && systemctl restart vhdprep-agent.service'",
			int(enableLimit.Seconds())))
		start := time.Now()
		ext.publish(t, 2, "enabled", 0, ext.firstCommand())
		ext.waitSuccess(ctx, t, vm, "e2e-extension-ok")
		if got := strings.TrimSpace(c.run("cat " + markerFile)); got != markerText {
			t.Errorf("the extension's marker holds %q, want %q", got, markerText)
		}
		if took := time.Since(start); ext.real && took < enableLimit {
			t.Errorf("the script took %s, less than the enable limit of %s it should outlive", took, enableLimit)
		}
	})

	stages.run(t, "extension settings change", extBound, func(ctx context.Context) {
		ext.publish(t, 3, "enabled", 1, "echo e2e-extension-second")
		ext.waitSuccess(ctx, t, vm, "e2e-extension-second")
	})

	stages.run(t, "extension removal", extBound, func(ctx context.Context) {
		ext.publish(t, 4, "uninstall", 1, "true")
		ext.waitGone(ctx, vm)
		c := vm.ssh(ctx, vmUser, key.auth())
		defer c.close()
		dir := "/var/lib/waagent/" + ext.name + "-" + ext.version
		if out := strings.TrimSpace(c.run("test -e " + dir + " && echo left || echo gone")); out != "gone" {
			t.Errorf("%s is still there after the uninstall", dir)
		}
	})

	stages.run(t, "reboot to Ready", rebootBound, func(ctx context.Context) {
		c := vm.ssh(ctx, vmUser, key.auth())
		c.runInput(password+"\n", "sudo -S -p '' systemctl poweroff || true")
		c.close()
		vm.waitExit(ctx)
		before := len(sim.Health())
		vm.start("boot-2")
		vm.waitReady(ctx, 4, before)
		for _, h := range sim.Health()[before:] {
			if h.SubStatus == "Provisioning" {
				t.Errorf("the second boot provisioned again: %+v", h)
			}
		}
		if serial := vm.serialLog(); !strings.Contains(serial, "already provisioned") {
			t.Errorf("the provisioning unit's log on the second boot does not say the VM was already provisioned")
		}
	})
}

// run runs the binary and returns its combined output and exit code; it
// is killed at the stage's bound.
func run(ctx context.Context, t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), context.Cause(ctx))
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return out.String(), 0
}

func mustRun(ctx context.Context, t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, code := run(ctx, t, bin, args...)
	if code != 0 {
		t.Fatalf("vhdprep %s exited %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// ruleStatuses maps each rule of a JSON check report to its status.
func ruleStatuses(t *testing.T, report string) map[string]string {
	t.Helper()
	var r struct {
		Rules []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(report), &r); err != nil {
		t.Fatalf("check's JSON report: %v\n%s", err, report)
	}
	status := map[string]string{}
	for _, rule := range r.Rules {
		status[rule.ID] = rule.Status
	}
	return status
}

func requestLog(sim *wiresim.Server, n int) string {
	reqs := sim.Requests()
	if len(reqs) > n {
		reqs = reqs[len(reqs)-n:]
	}
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "  %s %s -> %d (hostplugin %v)\n", r.Method, r.Path, r.Status, r.HostPlugin)
	}
	return b.String()
}

// freePort is a loopback TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stage is one step of the pipeline, timed for the closing summary.
type stage struct {
	name  string
	bound time.Duration
	took  time.Duration
	ok    bool
}

// timings runs the pipeline's stages and closes the test with their table
// and, on failure, a verdict naming the stage and the accelerator.
type timings struct {
	stages   []stage
	accel    accel
	accelWhy string
	machine  *machine // once booted: the failure names its accelerator
}

// run runs f as the named stage, with a context that ends at its bound;
// a failed stage ends the test.
func (s *timings) run(t *testing.T, name string, bound time.Duration, f func(ctx context.Context)) {
	t.Helper()
	ctx, cancel := context.WithTimeoutCause(context.Background(), bound,
		fmt.Errorf("stage %q ran past its bound of %s", name, bound))
	defer cancel()
	start := time.Now()
	s.stages = append(s.stages, stage{name: name, bound: bound})
	st := &s.stages[len(s.stages)-1]
	t.Logf("stage %s (bound %s)", name, bound)
	defer func() { st.took = time.Since(start) }()
	f(ctx)
	st.ok = !t.Failed()
	if t.Failed() {
		t.FailNow()
	}
}

func (s *timings) print(t *testing.T) {
	var b strings.Builder
	var total time.Duration
	fmt.Fprintf(&b, "\n%-22s %10s %8s  %s\n", "stage", "seconds", "bound", "result")
	for _, st := range s.stages {
		result := "ok"
		if !st.ok {
			result = "FAILED"
		}
		fmt.Fprintf(&b, "%-22s %10.1f %8.0f  %s\n", st.name, st.took.Seconds(), st.bound.Seconds(), result)
		total += st.took
	}
	fmt.Fprintf(&b, "%-22s %10.1f\n", "total", total.Seconds())
	a, why := s.accel.name, s.accelWhy
	if s.machine != nil && s.machine.vm != nil && s.machine.accel.name != a {
		a, why = s.machine.accel.name, why+"; fell back to TCG after a silent boot"
	}
	if a != "" {
		fmt.Fprintf(&b, "accelerator: %s (%s)\n", a, why)
	}
	if n := len(s.stages); n > 0 && !s.stages[n-1].ok {
		fmt.Fprintf(&b, "e2e FAILED at stage %q with %s after %.0fs (bound %s); the serial logs' tails and the wire server's last requests are above\n",
			s.stages[n-1].name, a, s.stages[n-1].took.Seconds(), s.stages[n-1].bound)
	}
	t.Log(b.String())
}

// testWriter sends a command's output to the test log line by line.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
