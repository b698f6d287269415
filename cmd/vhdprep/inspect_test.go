package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

func TestInspectLsCat(t *testing.T) {
	img := testimage.Path(t, "disk-debian-mbr")
	code, out := runBin(t, "inspect", "--output", "json", img)
	var rep struct {
		OS struct {
			ID string `json:"id"`
		} `json:"os"`
		Mounts []struct {
			Path string `json:"path"`
		} `json:"mounts"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.OS.ID != "debian" || len(rep.Mounts) != 1 {
		t.Fatalf("inspect: exit %d\n%s", code, out)
	}
	if code, out = runBin(t, "inspect", img); code != 0 || !strings.Contains(out, "Debian GNU/Linux 12") || !strings.Contains(out, "Gen1 (BIOS) yes") {
		t.Fatalf("inspect text: exit %d\n%s", code, out)
	}
	if code, out = runBin(t, "ls", img, "/etc/default"); code != 0 || !strings.Contains(out, "grub") {
		t.Fatalf("ls: exit %d\n%s", code, out)
	}
	if code, out = runBin(t, "ls", img, "/"); code != 0 || !strings.Contains(out, "bin -> usr/bin") {
		t.Fatalf("ls /: exit %d\n%s", code, out)
	}
	if code, out = runBin(t, "cat", img, "/etc/fstab"); code != 0 || !strings.HasPrefix(out, "UUID=6b8f4c64") {
		t.Fatalf("cat: exit %d\n%s", code, out)
	}
	if code, out = runBin(t, "cat", img, "/etc/nope"); code != exitFailed || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "not exist") {
		t.Fatalf("cat of a missing file: exit %d\n%s", code, out)
	}
	if code, _ = runBin(t, "inspect"); code != exitUsage {
		t.Fatalf("inspect without an image: exit %d", code)
	}
}
