//go:build e2e

package e2e

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ovmf is the UEFI firmware of Debian's ovmf package, for Gen2 boots.
const ovmf = "/usr/share/ovmf/OVMF.fd"

// The kernel's own report of its command line, and systemd's greeting once
// it runs from the root filesystem (the initramfs found and mounted it).
var (
	kernelCmdline = regexp.MustCompile(`Command line: (.*)`)
	systemdUp     = regexp.MustCompile(`Welcome to .*Debian GNU/Linux.*`)
)

// runsFromRoot tells whether systemd has greeted from the root filesystem:
// dracut's initramfs runs systemd too, and greets as "... dracut-106
// (Initramfs)!".
func runsFromRoot(log string) bool {
	for _, w := range systemdUp.FindAllString(log, -1) {
		if !strings.Contains(w, "Initramfs") && !strings.Contains(w, "dracut") {
			return true
		}
	}
	return false
}

// bootToRoot boots disk (raw) as Azure boots a Gen1 VM (i440FX, BIOS, IDE)
// or, with gen2, a Gen2 VM (q35, UEFI), with no network, and stops at the
// first proof on the serial console that the system runs from its root
// filesystem. It returns the kernel's command line as the kernel printed it.
// With virtio the disk is on virtio-blk, for an initramfs made host-only on
// a KVM host.
func bootToRoot(t *testing.T, disk string, gen2, virtio bool) string {
	t.Helper()
	serial := filepath.Join(t.TempDir(), "serial.log")
	args := []string{"-machine", "pc", "-m", "1024", "-smp", "2", "-accel", "tcg",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
		"-serial", "file:" + serial,
		"-drive", "file=" + disk + ",format=raw,if=ide,index=0,cache=unsafe"}
	if virtio {
		args[len(args)-1] = strings.Replace(args[len(args)-1], "if=ide", "if=virtio", 1)
	}
	if gen2 {
		args[1] = "q35"
		args = append(args, "-bios", ovmf)
	}
	q := startQEMU(t, map[bool]string{false: "Gen1", true: "Gen2"}[gen2]+" (TCG)", serial, args)
	defer q.kill()
	deadline := time.Now().Add(bootBound)
	for {
		log := q.log()
		if runsFromRoot(log) {
			m := kernelCmdline.FindStringSubmatch(log)
			if m == nil {
				t.Fatal("systemd runs from the root filesystem, but the serial console shows no kernel command line")
			}
			return strings.TrimSpace(m[1])
		}
		select {
		case err := <-q.exited:
			q.exited <- err
			t.Fatalf("QEMU exited (%v) before systemd ran from the root filesystem", err)
		case <-time.After(2 * time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd did not run from the root filesystem within %s", bootBound)
		}
	}
}

// The prompt of initramfs-tools' shell, and what the script sent there
// prints last: the shell computes it, so the echoed command line does not
// hold it.
const (
	initramfsPrompt = "(initramfs) "
	shellDone       = "vhdprep-e2e-script-done"
	shellDoneCmd    = "echo vhdprep-e2e-script-$(echo done)"
)

// premountShell boots kernel with initrd and no disk under TCG, with
// break=premount: initramfs-tools' init loads the drivers it loads early
// (conf/modules), then opens a shell on the serial console instead of
// mounting a root. It runs script in that shell and returns what the
// console printed after the script was sent.
func premountShell(t *testing.T, kernel, initrd, script string) string {
	t.Helper()
	dir := t.TempDir()
	sock, serial := filepath.Join(dir, "serial.sock"), filepath.Join(dir, "serial.log")
	log, err := os.Create(serial)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	// wait=on: the guest starts once the test holds the console.
	q := startQEMU(t, "initramfs shell (TCG)", serial, []string{"-machine", "pc", "-m", "512", "-accel", "tcg",
		"-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot",
		"-chardev", "socket,id=console,path=" + sock + ",server=on,wait=on", "-serial", "chardev:console",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 break=premount"})
	defer q.kill()
	var console net.Conn
	for deadline := time.Now().Add(30 * time.Second); console == nil; time.Sleep(100 * time.Millisecond) {
		if console, err = net.Dial("unix", sock); err != nil && time.Now().After(deadline) {
			t.Fatalf("QEMU's serial console %s: %v", sock, err)
		}
	}
	defer console.Close()
	go io.Copy(log, console)
	sent := -1
	for deadline := time.Now().Add(bootBound); ; {
		text := q.log()
		if sent < 0 && strings.Contains(text, initramfsPrompt) {
			sent = len(text)
			if _, err := io.WriteString(console, script+"; "+shellDoneCmd+"\n"); err != nil {
				t.Fatalf("writing to the initramfs shell: %v", err)
			}
		}
		if sent >= 0 {
			if out, _, ok := strings.Cut(text[sent:], shellDone); ok {
				return out
			}
		}
		select {
		case err := <-q.exited:
			q.exited <- err
			t.Fatalf("QEMU exited (%v) before the initramfs shell ran the script", err)
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the initramfs shell did not run the script within %s", bootBound)
		}
	}
}
