package lint

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// A line over 64 KiB (where a bufio.Scanner stops) hides nothing after it.
func TestLongLinesHideNothing(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	target := tree(t, map[string]string{
		"etc/waagent.conf": "# " + long + "\nProvisioning.Agent=cloud-init\n",
		"etc/passwd":       "root:x:0:0:root:/root:/bin/bash\nlong:x:1:1:" + long + ":/:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n",
	})
	root, err := target.root()
	if err != nil {
		t.Fatal(err)
	}
	conf, lines, err := waagentConf(root)
	if err != nil || conf["Provisioning.Agent"] != "cloud-init" || lines["Provisioning.Agent"] != 2 {
		t.Errorf("waagent.conf read as %v at %v (%v)", conf, lines, err)
	}
	accts, err := accounts(root)
	if err != nil || !slices.ContainsFunc(accts, func(a account) bool { return a.name == "alice" && a.uid == 1000 }) {
		t.Errorf("accounts %+v (%v)", accts, err)
	}
}

// FuzzWaagentConf: each key read is set on the line it is reported at,
// that line is the last to set it, and the value is what WALinuxAgent's
// ConfigurationProvider.load makes of it (parts[1].split('#')[0].strip('" ').strip()).
func FuzzWaagentConf(f *testing.F) {
	f.Add([]byte("# Microsoft Azure Linux Agent Configuration\nExtensions.Enabled=y\nProvisioning.Agent=auto\nResourceDisk.Format=n\nResourceDisk.Filesystem=ext4\nResourceDisk.MountPoint=/mnt\nResourceDisk.EnableSwap=n\nResourceDisk.SwapSizeMB=0\nOS.EnableFirewall=y\n"))
	f.Add([]byte(" a = b = c \r\n#x=y\n=\na=\n"))
	f.Add([]byte("ResourceDisk.Format=Y # format\nResourceDisk.MountPoint=\" /mnt/resource\" \nb=\"#\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, at, err := waagentConf(fstest.MapFS{"etc/waagent.conf": {Data: b}})
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Split(string(b), "\n")
		for k, v := range vals {
			n := at[k]
			if n < 1 || n > len(text) {
				t.Fatalf("%q on line %d of %d", k, n, len(text))
			}
			line := strings.TrimSpace(text[n-1])
			key, val, _ := strings.Cut(line, "=")
			val, _, _ = strings.Cut(val, "#")
			if strings.HasPrefix(line, "#") || strings.TrimSpace(key) != k || strings.TrimSpace(strings.Trim(val, "\" ")) != v {
				t.Fatalf("%q=%q from line %d, %q", k, v, n, line)
			}
			for _, later := range text[n:] {
				if key, _, ok := strings.Cut(strings.TrimSpace(later), "="); ok && strings.TrimSpace(key) == k && !strings.HasPrefix(strings.TrimSpace(later), "#") {
					t.Fatalf("%q is set again later, by %q", k, later)
				}
			}
		}
	})
}

// FuzzSSHDConfig: each value sshd_config yields is the first argument of
// a line that sets its keyword, in the file and at the line reported, and
// reading ends, however the files include each other.
func FuzzSSHDConfig(f *testing.F) {
	f.Add([]byte("Include /etc/ssh/sshd_config.d/*.conf\nClientAliveInterval 600\n"), []byte("ClientAliveInterval 120\n"))
	f.Add([]byte("clientaliveinterval=\"90\" # x\nMatch User a\nPort 2\n"), []byte("Include /etc/ssh/sshd_config /etc/ssh/sshd_config\nPort = 22\n"))
	f.Add([]byte("Include sshd_config.d/a.conf\nInclude \"unclosed\n"), []byte("Include /etc/ssh/sshd_config.d/*.conf /etc/ssh/sshd_config.d/*.conf\n"))
	f.Fuzz(func(t *testing.T, main, dropIn []byte) {
		fsys := fstest.MapFS{
			"etc/ssh/sshd_config":          {Data: main},
			"etc/ssh/sshd_config.d/a.conf": {Data: dropIn},
		}
		locs, vals, err := sshdConfig(fsys)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range vals {
			l := locs[k]
			b := fsys[strings.TrimPrefix(l.File, "/")]
			if b == nil {
				t.Fatalf("%s=%q from %s, which is not there", k, v, l.File)
			}
			lines := strings.Split(string(b.Data), "\n")
			if l.Line < 1 || l.Line > len(lines) {
				t.Fatalf("%s=%q on line %d of %d", k, v, l.Line, len(lines))
			}
			key, args := sshdLine(lines[l.Line-1])
			if key != k || len(args) == 0 || args[0] != v {
				t.Fatalf("%s=%q from %s:%d, %q", k, v, l.File, l.Line, lines[l.Line-1])
			}
		}
	})
}

// FuzzSudoers: every logical line the sudoers reader yields starts on a
// line of a file it read, has no comment left, and reading ends whatever
// includes what.
func FuzzSudoers(f *testing.F) {
	f.Add([]byte("Defaults targetpw   # ask for the password of the target user i.e. root\nALL   ALL=(ALL) ALL   # WARNING!\n#includedir /etc/sudoers.d\n"), []byte("Defaults env_reset, \\\n !targetpw\n"))
	f.Add([]byte("@include sudoers.d/a\n@include /etc/sudoers\n#1000 ALL=(ALL) ALL\n"), []byte("@includedir /etc/sudoers.d\nDefaults:%wheel \"a#b\", targetpw\n"))
	f.Fuzz(func(t *testing.T, main, dropIn []byte) {
		fsys := fstest.MapFS{"etc/sudoers": {Data: main}, "etc/sudoers.d/a": {Data: dropIn}}
		lines, err := sudoersLines(fsys)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			b := fsys[strings.TrimPrefix(l.at.File, "/")]
			if b == nil || l.at.Line < 1 || l.at.Line > strings.Count(string(b.Data), "\n")+1 {
				t.Fatalf("%q at %s:%d, which is not there", l.text, l.at.File, l.at.Line)
			}
			if l.text == "" || cutSudoersComment(l.text) != l.text {
				t.Fatalf("%q at %s:%d still has a comment", l.text, l.at.File, l.at.Line)
			}
		}
	})
}
