package guest

import (
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzParseOSRelease feeds os-release files as distributions ship them and
// odd ones: every key and value parsed must come from the input.
func FuzzParseOSRelease(f *testing.F) {
	for _, s := range []string{
		"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		"NAME=\"Ubuntu\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n",
		"NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\n",
		"NAME=\"SLES\"\nVERSION=\"15-SP5\"\nID=\"sles\"\nID_LIKE=\"suse\"\nVERSION_ID=\"15.5\"\n",
		"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
		"# comment\n=novalue\nID='quoted'\r\nKEY=a=b\n\"\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for k, v := range parseOSRelease(b) {
			if strings.HasPrefix(k, "#") || !strings.Contains(string(b), k+"=") || !strings.Contains(string(b), v) {
				t.Fatalf("parsed %q=%q not from the input", k, v)
			}
		}
	})
}

// FuzzDetectArch feeds ELF headers to the architecture probe: a file that
// starts with the ELF magic and has a whole header always names an
// architecture, and anything else names none.
func FuzzDetectArch(f *testing.F) {
	x86 := append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 16)...)
	x86[18] = 0x3e
	arm := append([]byte("\x7fELF\x01\x02\x01\x00"), make([]byte, 16)...)
	arm[19] = 0x28
	for _, s := range [][]byte{x86, arm, x86[:19], []byte("#!/bin/sh\n")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		arch, from := DetectArch(fstest.MapFS{"bin/true": {Data: b}})
		elf := len(b) >= 20 && string(b[:4]) == elfMagic
		if elf != (arch != "") || elf != (from == "/bin/true") {
			t.Fatalf("header %x: arch %q from %q", b, arch, from)
		}
	})
}

// A line over 64 KiB (where a bufio.Scanner stops) hides no key after it.
func TestOSReleaseLongLine(t *testing.T) {
	kv := parseOSRelease([]byte("# " + strings.Repeat("x", 100<<10) + "\nID=debian\n"))
	if kv["ID"] != "debian" {
		t.Fatalf("read %v", kv)
	}
}
