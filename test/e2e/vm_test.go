//go:build e2e

package e2e

import (
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

// How long a boot may take under software emulation, and how long a
// poweroff may take.
const (
	bootTimeout     = 10 * time.Minute
	poweroffTimeout = 3 * time.Minute
)

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
	kvm     bool
	vmID    string // the same on every boot: one VM
	sshPort int
	cmd     *exec.Cmd
	exited  chan error
	serial  string // the current boot's serial log
}

func (m *machine) start(name string) {
	t := m.t
	m.sshPort = freePort(t)
	m.serial = filepath.Join(m.dir, name+"-serial.log")
	netdev := strings.Join([]string{
		"user,id=net0,net=168.63.129.0/24,dhcpstart=168.63.129.100",
		fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:22", m.sshPort),
		guestfwd(80, m.sim.Endpoint()),
		guestfwd(32526, m.sim.HostPluginEndpoint()),
	}, ",")
	args := []string{
		"-machine", "pc", "-m", "1024", "-smp", "2",
		// Azure's firmware always has a system UUID: the VM ID the agent
		// keeps its provisioning marker by (QEMU's default is none).
		"-uuid", m.vmID,
		"-display", "none", "-monitor", "none", "-no-reboot",
		"-serial", "file:" + m.serial,
		// The VHD as a raw disk: its footer is the disk's last sector, as on Azure.
		"-drive", "file=" + m.disk + ",format=raw,if=ide,index=0,cache=unsafe",
		"-drive", "file=" + m.iso + ",format=raw,if=ide,index=1,media=cdrom,readonly=on",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
	}
	if m.kvm {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg")
	}
	m.cmd = exec.Command("qemu-system-x86_64", args...)
	m.cmd.Stdout, m.cmd.Stderr = testWriter{t}, testWriter{t}
	// Its own process group (QEMU and the socat it starts per connection),
	// killed with the test process if that dies.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting QEMU: %v", err)
	}
	t.Logf("QEMU %s (%s), serial log %s, SSH on 127.0.0.1:%d", name, m.accel(), m.serial, m.sshPort)
	exited := make(chan error, 1)
	m.exited = exited
	go func() { exited <- m.cmd.Wait() }()
	cmd, serial := m.cmd, m.serial
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("serial log %s (last 60 lines):\n%s", filepath.Base(serial), tail(readLog(serial), 60))
		}
	})
}

func (m *machine) accel() string {
	if m.kvm {
		return "KVM"
	}
	return "TCG"
}

// guestfwd hands each guest connection to 168.63.129.16:port to addr,
// through a socat QEMU starts for it.
func guestfwd(port int, addr string) string {
	return fmt.Sprintf("guestfwd=tcp:%s:%d-cmd:socat - TCP:%s", wireServerIP, port, addr)
}

func (m *machine) serialLog() string { return readLog(m.serial) }

// readLog is a log file's text; "" until it exists.
func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// waitReady waits for a Ready health report of the given incarnation among
// the reports after the first skip.
func (m *machine) waitReady(incarnation, skip int) {
	t := m.t
	want := strconv.Itoa(incarnation)
	m.waitFor(bootTimeout, "a Ready health report for incarnation "+want, func() bool {
		h := m.sim.Health()
		for _, r := range h[min(skip, len(h)):] {
			if r.State == "Ready" && r.Incarnation == want {
				return true
			}
		}
		return false
	})
	t.Logf("Ready reported for incarnation %s", want)
}

// waitFor polls cond until it holds, the VM exits, or the timeout passes.
func (m *machine) waitFor(timeout time.Duration, what string, cond func() bool) {
	t := m.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case err := <-m.exited:
			m.exited <- err
			t.Fatalf("QEMU exited (%v) while waiting for %s", err, what)
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, timeout)
		}
	}
}

// waitExit waits for the guest to power off.
func (m *machine) waitExit() {
	select {
	case err := <-m.exited:
		m.exited <- err
	case <-time.After(poweroffTimeout):
		m.t.Fatalf("the guest did not power off within %s", poweroffTimeout)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kvmBoots says whether KVM really runs a guest here: /dev/kvm can exist
// where nested virtualization never gets a vCPU going, so a one-sector
// disk whose boot code writes "K" to the serial port is booted with KVM,
// and KVM is used only if the K arrives within seconds.
func kvmBoots(t *testing.T, dir string) bool {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Log("no /dev/kvm: booting with TCG (software emulation)")
		return false
	}
	sector := make([]byte, 512)
	// mov dx,0x3f8; mov al,'K'; out dx,al; hlt; jmp $-1
	copy(sector, []byte{0xba, 0xf8, 0x03, 0xb0, 'K', 0xee, 0xf4, 0xeb, 0xfd})
	sector[510], sector[511] = 0x55, 0xaa
	disk, out := filepath.Join(dir, "kvm-probe.img"), filepath.Join(dir, "kvm-probe.log")
	if err := os.WriteFile(disk, sector, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-machine", "pc", "-m", "64",
		"-display", "none", "-monitor", "none", "-nodefaults", "-serial", "file:"+out,
		"-drive", "file="+disk+",format=raw,if=ide")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if b, _ := os.ReadFile(out); strings.Contains(string(b), "K") {
			t.Log("KVM boots a guest here: using it")
			return true
		}
	}
	t.Log("/dev/kvm is present but a KVM guest did not run: booting with TCG (software emulation)")
	return false
}
