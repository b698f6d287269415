package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/azurite"
	"github.com/vhdprep/vhdprep/internal/testimage"
)

// -v logs each step on stderr: the image opened and its format, each rule
// run, each repair and change, the check again, convert's and resize's
// sizes; stdout keeps the result.
func TestVerboseLogsEachStep(t *testing.T) {
	testimage.RequireTools(t, "debugfs", "e2fsck", "e2undo")
	dir := t.TempDir()
	copyImage(t, "disk-debian-mbr", dir, "disk.img")
	for _, c := range []struct {
		code int
		args []string
		want []string
	}{
		{exitOK, []string{"info", "disk.img"}, []string{"vhdprep: opened disk.img: format raw, ", "vhdprep: Azure's verdict: valid false, 1 problems"}},
		{exitOK, []string{"inspect", "disk.img"}, []string{"vhdprep: opened disk.img: format raw", "vhdprep: mounted p1 at / (ext4)"}},
		{exitOK, []string{"ls", "disk.img", "/etc"}, []string{"vhdprep: opened disk.img: format raw"}},
		{exitGate, []string{"check", "disk.img"}, []string{"vhdprep: opened disk.img to read: format raw, ", "vhdprep: check: rule KRN001: fail, 2 findings", "vhdprep: check: rule VHD002: skip (", "vhdprep: check: 9 errors, "}},
		{exitOK, []string{"fix", "disk.img", "--only", "KRN001"}, []string{
			"vhdprep: opened disk.img to change (its lock held): format raw",
			"vhdprep: check: rule KRN001: fail",
			"vhdprep: repair KRN001: changes /boot/grub/grub.cfg, /etc/default/grub",
			"vhdprep: change planned: write /etc/default/grub",
			"vhdprep: changes applied and verified",
			"vhdprep: opened disk.img to read: format raw", // afresh, for the check again
			"vhdprep: check again: rule KRN001: pass",
		}},
		{exitOK, []string{"deprovision", "disk.img"}, []string{"vhdprep: repair SEC003: changes ", "vhdprep: check again: rule SEC003: pass"}},
		{exitOK, []string{"agent", "inject", "disk.img"}, []string{"vhdprep: opened disk.img to change", "vhdprep: agent inject: 7 changes planned", "vhdprep: agent inject: changes written and verified"}},
		{exitOK, []string{"convert", "disk.img", "disk.vhd"}, []string{"vhdprep: converting disk.img to a fixed VHD at disk.vhd", "vhdprep: read disk.img as raw, virtual size 100663296 bytes", "vhdprep: wrote "}},
		{exitOK, []string{"resize", "disk.vhd", "--size", "200M"}, []string{"vhdprep: resizing disk.vhd", "vhdprep: disk.vhd: vhd-fixed, 100663296 -> 209715200 bytes; changed true"}},
	} {
		code, out, errOut := runOut(t, dir, nil, append(c.args, "-v")...)
		if code != c.code || out == "" {
			t.Errorf("%v -v: exit %d, want %d; stdout %q\n%s", c.args, code, c.code, out, errOut)
			continue
		}
		for _, want := range c.want {
			if !strings.Contains(errOut, want) {
				t.Errorf("%v -v: stderr lacks %q:\n%s", c.args, want, errOut)
			}
		}
	}
	// -q wins: only errors.
	if code, out, errOut := runOut(t, dir, nil, "check", "disk.img", "-v", "-q"); code != exitGate || out == "" || errOut != "" {
		t.Errorf("check -v -q: exit %d, stderr %q", code, errOut)
	}
}

// upload -v logs each step, each retry and each throttle with its status
// and the wait, and never the SAS: its signature neither whole nor
// escaped.
func TestVerboseUploadLogsRetriesAndThrottlesWithoutTheSAS(t *testing.T) {
	srv := azurite.Start(t)
	srv.CreateContainer(t, "vhds")
	px := azurite.NewProxy(t, srv, azurite.Faults{Status503Every: 3, Status500Every: 5})
	file, _ := chunkyVHD(t, 32<<20, 8)
	sasURL := srv.SASURL(t, px.Endpoint, "vhds", "disk.vhd")
	u, err := url.Parse(sasURL)
	if err != nil {
		t.Fatal(err)
	}
	sig := u.Query().Get("sig")
	if len(sig) < 8 {
		t.Fatalf("SAS %q has no signature", sasURL)
	}
	code, out, errOut := runOut(t, "", nil, "upload", file, "--blob-url", sasURL, "--concurrency", "1", "--check=false", "-v")
	if code != exitOK {
		t.Fatalf("upload -v: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"vhdprep: opened " + file + ": format vhd-fixed",
		"vhdprep: Azure's verdict on " + file + ": valid; uploading to " + px.Endpoint + "/vhds/disk.vhd\n",
		"vhdprep: created the page blob, ",
		": throttled (HTTP 503 Service Unavailable (ServerBusy)): waiting 1s, then try 2 of ",
		": retrying (HTTP 500 Internal Server Error (InternalError)): waiting ",
		"vhdprep: sent ",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("upload -v: stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, secret := range []string{sig, url.QueryEscape(sig), u.RawQuery} {
		if strings.Contains(errOut+out, secret) {
			t.Errorf("upload -v printed the SAS (%q):\n%s%s", secret, out, errOut)
		}
	}
}
