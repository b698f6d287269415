package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/raw/probe"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

// guestEntries describes every entry of an image's guest (type, mode,
// content sum or symlink target), read with vhdprep's own readers.
func guestEntries(t *testing.T, img string) map[string]string {
	t.Helper()
	g, err := guest.Open(img)
	if err != nil || g.Root == nil {
		t.Fatalf("opening %s: %v %v", img, err, g.RootErr)
	}
	defer g.Close()
	out := map[string]string{}
	err = fs.WalkDir(g.Root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := g.Root.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := g.Root.ReadLink(p)
			out[p] = "link " + target
		case info.IsDir():
			out[p] = fmt.Sprintf("dir %v", info.Mode().Perm())
		default:
			b, err := g.Root.ReadFile(p)
			if err != nil {
				return err
			}
			out[p] = fmt.Sprintf("file %v %x", info.Mode().Perm(), sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffEntries(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s: %s was %q, now %q", what, p, v, after[p])
		}
	}
	for p, v := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s (%s) is new", what, p, v)
		}
	}
}

// e2fsckAll checks every ext2/3/4 filesystem of an image.
func e2fsckAll(t *testing.T, img string) {
	t.Helper()
	g, err := guest.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, v := range g.Layout.Volumes {
		if v.FS.Type == probe.Ext2 || v.FS.Type == probe.Ext3 || v.FS.Type == probe.Ext4 {
			if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, v.Offset)).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck %s: %v\n%s", v.Name, err, out)
			}
		}
	}
}

// editRoot changes an image's root filesystem through the write layer.
func editRoot(t *testing.T, img string, edit func(w write.FS)) {
	t.Helper()
	g, err := guest.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	var vol string
	for _, m := range g.Mounts {
		if m.Path == "/" {
			vol = m.Volume
		}
	}
	for _, v := range g.Layout.Volumes {
		if v.Name == vol {
			w, err := write.OpenExt4(img, v.Offset, v.Size)
			if err != nil {
				t.Fatal(err)
			}
			edit(w)
			err = w.Apply()
			w.Close()
			g.Close()
			if err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no root volume")
}

func fileSum(t *testing.T, name string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func checkStatus(t *testing.T, img, id string) string {
	t.Helper()
	_, out := runBin(t, "check", img, "--output", "json")
	var rep struct {
		Rules []struct{ ID, Status string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check --output json: %v\n%s", err, out)
	}
	for _, r := range rep.Rules {
		if r.ID == id {
			return r.Status
		}
	}
	t.Fatalf("no %s in the report", id)
	return ""
}

func TestAgentInjectIntoImagesAndRemove(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	want, err := os.ReadFile(agentBins["amd64"])
	if err != nil {
		t.Fatal(err)
	}
	for _, recipe := range []string{"disk-debian-mbr", "disk-ubuntu-gpt"} {
		t.Run(recipe, func(t *testing.T) {
			img := testimage.Copy(t, recipe)
			before := guestEntries(t, img)
			if got := checkStatus(t, img, "AGT001"); got != "fail" {
				t.Fatalf("AGT001 before inject: %s", got)
			}
			sum := fileSum(t, img)
			if code, out := runBin(t, "agent", "inject", img, "--dry-run"); code != 0 || !strings.Contains(out, "write  /usr/sbin/vhdprep-agent (0755)") || fileSum(t, img) != sum {
				t.Fatalf("inject --dry-run: exit %d, image changed %v\n%s", code, fileSum(t, img) != sum, out)
			}
			if code, out := runBin(t, "agent", "inject", img); code != 0 {
				t.Fatalf("inject: exit %d\n%s", code, out)
			}
			e2fsckAll(t, img)
			if got := checkStatus(t, img, "AGT001"); got != "pass" {
				t.Fatalf("AGT001 after inject: %s", got)
			}
			g, err := guest.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.Root.ReadFile("usr/sbin/vhdprep-agent")
			info, _ := g.Root.Lstat("usr/sbin/vhdprep-agent")
			g.Close()
			if err != nil || !bytes.Equal(got, want) || info.Mode().Perm() != 0o755 {
				t.Fatalf("the agent in the image is not the embedded amd64 one with mode 0755 (%v, %v)", err, info.Mode())
			}
			after := guestEntries(t, img)
			for name, prefix := range map[string]string{
				"usr/lib/systemd/system/" + layout.ProvisionUnit:                     "file -rw-r--r--",
				"usr/lib/systemd/system/" + layout.DaemonUnit:                        "file -rw-r--r--",
				"etc/systemd/system/multi-user.target.wants/" + layout.ProvisionUnit: "link /usr/lib/systemd/system/" + layout.ProvisionUnit,
				"etc/systemd/system/multi-user.target.wants/" + layout.DaemonUnit:    "link /usr/lib/systemd/system/" + layout.DaemonUnit,
				"etc/vhdprep-agent.conf":                                             fmt.Sprintf("file -rw-r--r-- %x", sha256.Sum256([]byte(layout.DefaultConfigText))),
			} {
				if !strings.HasPrefix(after[name], prefix) {
					t.Errorf("%s: %q, want %s", name, after[name], prefix)
				}
			}

			sum = fileSum(t, img)
			if code, out := runBin(t, "agent", "inject", img); code != 0 || strings.TrimSpace(out) != "nothing to change" || fileSum(t, img) != sum {
				t.Fatalf("second inject: exit %d, image changed %v\n%s", code, fileSum(t, img) != sum, out)
			}
			if code, out := runBin(t, "agent", "remove", img); code != 0 || !strings.Contains(out, "remove /usr/sbin/vhdprep-agent") {
				t.Fatalf("remove: exit %d\n%s", code, out)
			}
			e2fsckAll(t, img)
			diffEntries(t, "after remove", before, guestEntries(t, img))
			if code, out := runBin(t, "agent", "remove", img); code != exitFailed || !strings.Contains(out, "nothing to remove") {
				t.Fatalf("second remove: exit %d\n%s", code, out)
			}
		})
	}
}

func TestAgentInjectReplacesWALinuxAgentInAnImage(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	const wants = "/etc/systemd/system/multi-user.target.wants/walinuxagent.service"
	editRoot(t, img, func(w write.FS) {
		for _, d := range []string{"/usr/lib/systemd/system", "/etc/systemd", "/etc/systemd/system", "/etc/systemd/system/multi-user.target.wants"} {
			w.Mkdir(d, 0o755, 0, 0)
		}
		w.WriteFile("/usr/lib/systemd/system/walinuxagent.service", []byte("[Service]\nExecStart=/usr/sbin/waagent -daemon\n"), 0o644, 0, 0)
		w.Symlink("/lib/systemd/system/walinuxagent.service", wants)
	})
	before := guestEntries(t, img)
	sum := fileSum(t, img)
	code, out := runBin(t, "agent", "inject", img)
	if code != exitFailed || !strings.Contains(out, "WALinuxAgent starts at boot") || !strings.Contains(out, "--replace-waagent") || strings.Count(strings.TrimSpace(out), "\n") != 0 || fileSum(t, img) != sum {
		t.Fatalf("inject beside WALinuxAgent: exit %d\n%s", code, out)
	}
	code, out = runBin(t, "agent", "inject", img, "--replace-waagent", "--output", "json")
	var res struct {
		Arch    string
		Agents  []string
		Changes []struct{ Action, Path, Link string }
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil {
		t.Fatalf("inject --replace-waagent: exit %d %v\n%s", code, err, out)
	}
	removed := false
	for _, c := range res.Changes {
		removed = removed || c.Action == "remove" && c.Path == wants
	}
	if res.Arch != "x86_64" || len(res.Agents) != 1 || res.Agents[0] != "WALinuxAgent" || !removed {
		t.Fatalf("inject --replace-waagent: %+v", res)
	}
	e2fsckAll(t, img)
	if _, still := guestEntries(t, img)[strings.TrimPrefix(wants, "/")]; still {
		t.Fatal("WALinuxAgent's enable link is still there")
	}
	if a1, a6 := checkStatus(t, img, "AGT001"), checkStatus(t, img, "AGT006"); a1 != "pass" || a6 != "pass" {
		t.Fatalf("check after inject --replace-waagent: AGT001 %s, AGT006 %s", a1, a6)
	}
	if code, out := runBin(t, "agent", "remove", img); code != 0 || !strings.Contains(out, "enabled again: [WALinuxAgent]") {
		t.Fatalf("remove: exit %d\n%s", code, out)
	}
	diffEntries(t, "after remove", before, guestEntries(t, img))
}

func TestAgentInjectRefusals(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	img := testimage.Copy(t, "disk-debian-mbr")
	editRoot(t, img, func(w write.FS) {
		w.Remove("/usr/sbin/init")
		w.Remove("/usr/lib/systemd/systemd")
		w.WriteFile("/usr/sbin/openrc", []byte("#!/bin/sh\n"), 0o755, 0, 0)
	})
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{img}, exitFailed, "init system is openrc"},
		{[]string{testimage.Path(t, "disk-debian-mbr"), "--agent-binary", agentBins["arm64"], "--dry-run"}, exitFailed, "build it with GOARCH=amd64"},
		{[]string{testimage.Path(t, "disk-debian-mbr-qcow2")}, exitFailed, "-fixed.vhd', then 'vhdprep agent inject "},
		{nil, exitUsage, "give an IMAGE or --root DIR"},
		{[]string{img, "--agent-binary", "/no/such/agent"}, exitUsage, "--agent-binary"},
	} {
		code, out := runBin(t, append([]string{"agent", "inject"}, c.args...)...)
		if code != c.code || !strings.Contains(out, c.want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("agent inject %v: exit %d, want %d and %q:\n%s", c.args, code, c.code, c.want, out)
		}
	}
}

// --root on a directory, here an aarch64 guest: the arm64 agent goes in.
func TestAgentInjectRootArm64(t *testing.T) {
	d := t.TempDir()
	arm, err := os.ReadFile(agentBins["arm64"])
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"usr/bin", "usr/sbin", "usr/lib/systemd", "etc"} {
		os.MkdirAll(filepath.Join(d, dir), 0o755)
	}
	os.Symlink("usr/lib", filepath.Join(d, "lib"))
	os.Symlink("../lib/systemd/systemd", filepath.Join(d, "usr/sbin/init"))
	os.WriteFile(filepath.Join(d, "usr/lib/systemd/systemd"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(d, "usr/bin/true"), arm, 0o755) // any aarch64 ELF makes the guest aarch64
	if code, out := runBin(t, "agent", "inject", "--root", d); code != 0 || !strings.Contains(out, "provisioning media: left in the drive") || !strings.Contains(out, "no eject program") {
		t.Fatalf("inject --root into a tree without eject: exit %d\n%s", code, out)
	}
	got, err := os.ReadFile(filepath.Join(d, "usr/sbin/vhdprep-agent"))
	if err != nil || !bytes.Equal(got, arm) {
		t.Fatalf("the aarch64 guest did not get the arm64 agent (%v)", err)
	}
	if code, out := runBin(t, "check", "--root", d, "--output", "json"); !strings.Contains(out, `"id": "AGT001",`+"\n"+`      "severity": "error",`+"\n"+`      "status": "pass"`) {
		t.Fatalf("check after inject --root: exit %d\n%s", code, out)
	}
	if code, out := runBin(t, "agent", "remove", "--root", d); code != 0 {
		t.Fatalf("remove --root: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(d, "usr/sbin/vhdprep-agent")); err == nil {
		t.Fatal("remove left the agent")
	}
}

// An XFS root gets the refusal fix gives, after the plan and before any
// byte of the image is touched.
