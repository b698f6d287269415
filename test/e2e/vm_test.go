//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/wiresim"
)

// wireServerIP is Azure's wire server address, which the agent in the
// image uses unchanged: the test bends the network, not the agent.
const wireServerIP = "168.63.129.16"

// machine is the QEMU virtual machine the image boots in: a Gen1-like PC
// (i440FX, IDE disk and CD-ROM), user-mode networking whose subnet holds
// 168.63.129.16, with that address's ports 80 and 32526 forwarded to the
// simulator and the guest's SSH port forwarded to a loopback port.
type machine struct {
	t       *testing.T
	disk    string
	iso     string
	dir     string
	sim     *wiresim.Server
	vmID    string // the same on every boot: one VM
	sshPort int
	boot    string // the current boot's name
	pcap    string // the current boot's network traffic
	watchdog
}

func (m *machine) start(name string) {
	m.boot = name
	m.sshPort = freePort(m.t)
	netdev := strings.Join([]string{
		"user,id=net0,net=168.63.129.0/24,dhcpstart=168.63.129.100",
		fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:22", m.sshPort),
		guestfwd(80, m.sim.Endpoint()),
		guestfwd(32526, m.sim.HostPluginEndpoint()),
	}, ",")
	serial := filepath.Join(m.dir, name+"-serial.log")
	m.pcap = filepath.Join(m.dir, name+"-net.pcap")
	args := append(append([]string{}, m.accel.args...),
		"-machine", "pc", "-m", "1024", "-smp", "2",
		// Azure's firmware always has a system UUID: the VM ID the agent
		// keeps its provisioning marker by (QEMU's default is none).
		"-uuid", m.vmID,
		"-display", "none", "-monitor", "none", "-no-reboot",
		"-serial", "file:"+serial,
		// The VHD as a raw disk: its footer is the disk's last sector, as on Azure.
		"-drive", "file="+m.disk+",format=raw,if=ide,index=0,cache=unsafe",
		"-drive", "file="+m.iso+",format=raw,if=ide,index=1,media=cdrom,readonly=on",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
		// The guest's traffic, to read what its DHCP requests said.
		"-object", "filter-dump,id=dump0,netdev=net0,file="+m.pcap,
	)
	m.vm = startQEMU(m.t, name+" ("+m.accel.name+")", serial, args)
	m.t.Logf("SSH to %s on 127.0.0.1:%d", name, m.sshPort)
}

// guestfwd hands each guest connection to 168.63.129.16:port to addr,
// through a socat QEMU starts for it.
func guestfwd(port int, addr string) string {
	return fmt.Sprintf("guestfwd=tcp:%s:%d-cmd:socat - TCP:%s", wireServerIP, port, addr)
}

func (m *machine) serialLog() string { return m.vm.log() }

// waitReady waits for a Ready health report of the given incarnation among
// the reports after the first skip. A watched boot (KVM) that prints
// nothing on the serial console for m.silence before it is Ready is
// stopped and booted again with TCG, once.
func (m *machine) waitReady(ctx context.Context, incarnation, skip int) {
	want := strconv.Itoa(incarnation)
	m.waitFor(ctx, "a Ready health report for incarnation "+want, func() bool {
		h := m.sim.Health()
		for _, r := range h[min(skip, len(h)):] {
			if r.State == "Ready" && r.Incarnation == want {
				return true
			}
		}
		if m.stalled(m.t) {
			m.start(m.boot + "-tcg")
		}
		return false
	})
	m.t.Logf("Ready reported for incarnation %s", want)
}

// waitFor polls cond until it holds, the VM exits, or the stage's time is up.
func (m *machine) waitFor(ctx context.Context, what string, cond func() bool) {
	t := m.t
	t.Helper()
	for !cond() {
		select {
		case err := <-m.vm.exited:
			m.vm.exited <- err
			t.Fatalf("QEMU exited (%v) while waiting for %s", err, what)
		case <-ctx.Done():
			t.Fatalf("no %s: %v", what, context.Cause(ctx))
		case <-time.After(time.Second):
		}
	}
}

// waitExit waits for the guest to power off.
func (m *machine) waitExit(ctx context.Context) {
	select {
	case err := <-m.vm.exited:
		m.vm.exited <- err
	case <-ctx.Done():
		m.t.Fatalf("the guest did not power off: %v", context.Cause(ctx))
	}
}

// watchdog watches a boot's progress, not only its deadline: a watched
// boot (KVM) whose serial console stays silent for silence is stopped and
// the accelerator becomes TCG, once.
type watchdog struct {
	accel   accel
	silence time.Duration // kvmSilence; shorter in the watchdog's own test
	vm      *qemu
}

// stalled says whether the boot was stopped for its silence; the caller
// then boots again, with w.accel now TCG.
func (w *watchdog) stalled(t *testing.T) bool {
	quiet := w.vm.quiet()
	if !w.accel.watched() || quiet <= w.silence {
		return false
	}
	t.Logf("%s printed nothing on the serial console for %s: stopping it and booting again with TCG",
		w.vm.name, quiet.Round(time.Second))
	w.vm.kill()
	w.accel = tcg
	return true
}

// qemu is one QEMU process and its serial log.
type qemu struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	exited chan error
	serial string
	// For quiet: the log's size when last seen, and when it last grew.
	size   int
	grewAt time.Time
}

// startQEMU starts QEMU with args, which write the serial console to
// serial. It is killed when the test ends; if the test failed, the tail of
// its serial log is logged first.
func startQEMU(t *testing.T, name, serial string, args []string) *qemu {
	t.Helper()
	cmd := exec.Command("qemu-system-x86_64", args...)
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	// Its own process group (QEMU and the socat it starts per connection),
	// killed with the test process if that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting QEMU: %v", err)
	}
	t.Logf("QEMU %s, serial log %s", name, serial)
	q := &qemu{t: t, name: name, cmd: cmd, exited: make(chan error, 1), serial: serial, grewAt: time.Now()}
	go func() { q.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		q.kill()
		if t.Failed() {
			t.Logf("serial log of %s (last 60 lines):\n%s", name, tail(q.log(), 60))
		}
	})
	return q
}

// kill stops QEMU and everything it started, and waits for it.
func (q *qemu) kill() {
	syscall.Kill(-q.cmd.Process.Pid, syscall.SIGKILL)
	err := <-q.exited
	q.exited <- err
}

// log is the serial console's text so far.
func (q *qemu) log() string {
	b, _ := os.ReadFile(q.serial)
	return string(b)
}

// quiet is how long the serial log has not grown.
func (q *qemu) quiet() time.Duration {
	if n := len(q.log()); n != q.size {
		q.size, q.grewAt = n, time.Now()
	}
	return time.Since(q.grewAt)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
