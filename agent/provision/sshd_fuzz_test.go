package provision

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// effective returns the PasswordAuthentication value sshd would use: the
// first one read in the global section, drop-ins read where the Include is.
func effective(t *testing.T, root string) string {
	main, err := os.ReadFile(filepath.Join(root, sshdConfig))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(main), "\n") {
		if keyword(l) == "match" {
			break
		}
		if keyword(l) == "include" && includesDropIns([]string{l}) == 0 {
			if d, err := os.ReadFile(filepath.Join(root, sshdDropIn)); err == nil {
				lines = append(lines, strings.Split(string(d), "\n")...)
			}
			continue
		}
		lines = append(lines, l)
	}
	for _, l := range lines {
		if keyword(l) == "passwordauthentication" {
			f := strings.Fields(strings.ReplaceAll(l, "=", " "))
			if len(f) > 1 {
				return f[1]
			}
		}
	}
	return ""
}

func FuzzSSHDConfig(f *testing.F) {
	f.Add("Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n", true)
	f.Add("PasswordAuthentication yes\nX11Forwarding no\nMatch User backup\n  PasswordAuthentication yes\n", true)
	f.Add("PasswordAuthentication no\nInclude sshd_config.d/*.conf\n", false)
	f.Add("#PasswordAuthentication yes\n", false)
	f.Fuzz(func(t *testing.T, config string, disable bool) {
		if len(config) > 4096 {
			return
		}
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, sshdConfig), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		p := &Provisioner{Root: root}
		if err := p.configureSSHD(disable); err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "no", false: "yes"}[disable]
		if got := effective(t, root); got != want {
			out, _ := os.ReadFile(filepath.Join(root, sshdConfig))
			t.Fatalf("effective PasswordAuthentication %q, want %q; sshd_config now:\n%s", got, want, out)
		}
	})
}
