//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// accel is how QEMU runs the guest's CPUs.
type accel struct {
	name string
	args []string
}

var (
	kvm = accel{"KVM", []string{"-accel", "kvm", "-cpu", "host"}}
	tcg = accel{"TCG", []string{"-accel", "tcg"}}
)

// watched says whether a boot with a is watched for progress: KVM can be
// offered where its guests crawl (nested virtualization on a loaded host),
// software emulation is slow but steady.
func (a accel) watched() bool { return a.name != tcg.name }

const (
	// probeBound is how long the probe kernel may take to reach
	// userspace with KVM: a working KVM boots it in a second or two.
	probeBound = 20 * time.Second
	// probeBoundTCG bounds the same probe under software emulation, run
	// where KVM is not used, to prove the probe itself works.
	probeBoundTCG = 3 * time.Minute
	// kvmSilence is how long a KVM boot may print nothing on the serial
	// console before it is stopped and booted again with TCG.
	kvmSilence = 60 * time.Second
	// probeMarker is what the probe's /init prints from userspace.
	probeMarker = "vhdprep-e2e-probe: userspace reached"
)

// chooseAccel decides the accelerator the guests boot with, by
// E2E_ACCEL (tcg, kvm, or auto, the default). Auto uses KVM only when
// kernel, the image's own, boots with it (and the probe's initrd) into userspace within
// probeBound; otherwise it runs the same probe under TCG once, so that a
// broken probe cannot pass for a broken KVM. It returns the choice and why.
func chooseAccel(t *testing.T, kernel, initrd string) (accel, string) {
	t.Helper()
	switch mode := os.Getenv("E2E_ACCEL"); mode {
	case "tcg":
		return tcg, "E2E_ACCEL=tcg"
	case "kvm":
		if _, err := os.Stat("/dev/kvm"); err != nil {
			t.Fatalf("E2E_ACCEL=kvm, but %v: unset E2E_ACCEL to let the test choose", err)
		}
		return kvm, "E2E_ACCEL=kvm (no probe)"
	case "", "auto":
	default:
		t.Fatalf("E2E_ACCEL=%q: want tcg, kvm or auto", mode)
	}
	dir := filepath.Dir(initrd)
	if _, err := os.Stat("/dev/kvm"); err == nil {
		took, err := probe(t, kvm, kernel, initrd, dir, probeBound)
		if err == nil {
			return kvm, fmt.Sprintf("the kernel reached userspace with KVM in %.1fs", took.Seconds())
		}
		why := fmt.Sprintf("/dev/kvm is present, but %v", err)
		t.Logf("%s: probing TCG", why)
		if _, err := probe(t, tcg, kernel, initrd, dir, probeBoundTCG); err != nil {
			t.Fatalf("the accelerator probe fails under TCG too, so it cannot judge KVM: %v", err)
		}
		return tcg, why
	}
	took, err := probe(t, tcg, kernel, initrd, dir, probeBoundTCG)
	if err != nil {
		t.Fatalf("the accelerator probe fails under TCG: %v", err)
	}
	return tcg, fmt.Sprintf("no /dev/kvm (the probe reached userspace under TCG in %.1fs)", took.Seconds())
}

// probe boots kernel with the probe initramfs under a and waits for its
// marker on the serial console; the error says how far it got.
func probe(t *testing.T, a accel, kernel, initrd, dir string, bound time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	v := startProbe(t, a, kernel, initrd, dir)
	defer v.kill()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	for {
		if strings.Contains(v.log(), probeMarker) {
			took := time.Since(start)
			t.Logf("accelerator probe: %s reached userspace in %.1fs", a.name, took.Seconds())
			return took, nil
		}
		select {
		case err := <-v.exited:
			v.exited <- err
			if strings.Contains(v.log(), probeMarker) {
				continue // it printed and powered off between two looks
			}
			return 0, fmt.Errorf("the probe VM exited (%v) before userspace; serial log: %q", err, tail(v.log(), 5))
		case <-ctx.Done():
			return 0, fmt.Errorf("the kernel did not reach userspace within %s with %s (%d bytes on the serial console; last: %q)",
				bound, a.name, len(v.log()), tail(v.log(), 3))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startProbe boots kernel with the probe initramfs under a.
func startProbe(t *testing.T, a accel, kernel, initrd, dir string) *qemu {
	t.Helper()
	serial, err := os.CreateTemp(dir, "probe-*-serial.log")
	if err != nil {
		t.Fatal(err)
	}
	serial.Close()
	return startQEMU(t, "the probe boot with "+a.name, serial.Name(), append(append([]string{}, a.args...),
		"-machine", "pc", "-m", "256", "-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot",
		"-serial", "file:"+serial.Name(), "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1"))
}

// testWatchdog proves the watchdog on the probe: a boot that prints
// nothing (QEMU's -S: the CPUs never start, as a crawling KVM guest looks
// from outside) is stopped after its silence and booted again with TCG,
// which reaches userspace.
func testWatchdog(t *testing.T, kernel, initrd, dir string) {
	silent := accel{"KVM (simulated by CPUs that never start)", []string{"-accel", "tcg", "-S"}}
	w := watchdog{accel: silent, silence: 5 * time.Second}
	w.vm = startProbe(t, w.accel, kernel, initrd, dir)
	deadline := time.Now().Add(probeBoundTCG + w.silence)
	for !strings.Contains(w.vm.log(), probeMarker) {
		if w.stalled(t) {
			w.vm = startProbe(t, w.accel, kernel, initrd, dir)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no userspace within %s of a silent boot (now %s)", probeBoundTCG+w.silence, w.accel.name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if w.accel.name != tcg.name {
		t.Fatalf("the probe reached userspace with %s: the silent boot was not replaced", w.accel.name)
	}
	w.vm.kill()
	t.Log("watchdog: the silent boot was stopped and TCG reached userspace")
}

// probeInit is the probe's /init: it proves userspace runs, then powers off.
const probeInit = `package main

import (
	"os"
	"syscall"
)

func main() {
	os.Stdout.WriteString("` + probeMarker + `\n")
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
`

// probeInitramfs builds the probe's initramfs: a newc cpio archive (which
// every kernel unpacks) of a static /init and the /dev/console it writes to.
func probeInitramfs(t *testing.T, dir string) string {
	t.Helper()
	src, bin := filepath.Join(dir, "probe-init.go"), filepath.Join(dir, "probe-init")
	if err := os.WriteFile(src, []byte(probeInit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the probe's /init: %v\n%s", err, out)
	}
	init, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for i, e := range []struct {
		name       string
		mode       uint32
		rmaj, rmin uint32
		data       []byte
	}{
		{name: "dev", mode: 0o040755},
		{name: "dev/console", mode: 0o020600, rmaj: 5, rmin: 1},
		{name: "init", mode: 0o100755, data: init},
		{name: "TRAILER!!!"},
	} {
		// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
		// devminor, rdevmajor, rdevminor, namesize, check
		fmt.Fprintf(&b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
			i+1, e.mode, 0, 0, 1, 0, len(e.data), 0, 0, e.rmaj, e.rmin, len(e.name)+1, 0)
		b.WriteString(e.name + "\x00")
		pad4(&b)
		b.Write(e.data)
		pad4(&b)
	}
	out := filepath.Join(dir, "probe.cpio")
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func pad4(b *bytes.Buffer) {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
}

// imageKernel copies the kernel /vmlinuz points at out of the image, with
// vhdprep itself, for the accelerator probe.
func imageKernel(t *testing.T, vhdprep, image, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "vmlinuz")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(vhdprep, "cat", image, "/vmlinuz")
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vhdprep cat %s /vmlinuz: %v\n%s", image, err, stderr.String())
	}
	return out
}
