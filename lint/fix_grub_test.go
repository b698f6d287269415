package lint

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/kernel"
)

// sourceDefaults sources the defaults as grub-mkconfig does (the file,
// then the drop-ins in name order) in sh, and returns GRUB_CMDLINE_LINUX
// and GRUB_CMDLINE_LINUX_DEFAULT.
func sourceDefaults(t *testing.T, root string) (linux, def string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `. ./etc/default/grub
for f in ./etc/default/grub.d/*.cfg; do [ -r "$f" ] && . "$f"; done
printf '%s\0%s' "$GRUB_CMDLINE_LINUX" "$GRUB_CMDLINE_LINUX_DEFAULT"`)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	linux, def, _ = strings.Cut(string(out), "\x00")
	return linux, def
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/default-grub", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fix on defaults files as distributions ship them and as builders write
// them: every parameter the kernel repairs add ends in GRUB_CMDLINE_LINUX
// as sh sources the files (one assignment, not rival ones of which the
// shell keeps the last), once, and check then passes KRN001-KRN003 and
// KRN008.
func TestFixDefaultGrubAsShippedSourcesEveryParameter(t *testing.T) {
	testRequireTool(t, "sh")
	dropIn := readTestdata(t, "ubuntu-cloudimg-50-cloudimg-settings.cfg")
	for _, c := range []struct {
		name  string
		files map[string]string
		bls   bool // RHEL and Fedora boot by BLS entries
	}{
		{"debian 12", map[string]string{"etc/default/grub": readTestdata(t, "debian-12.grub")}, false},
		{"ubuntu cloud image", map[string]string{"etc/default/grub": readTestdata(t, "debian-12.grub"), "etc/default/grub.d/50-cloudimg-settings.cfg": dropIn}, false},
		{"ubuntu drop-in, builder's grub", map[string]string{"etc/default/grub": "GRUB_TIMEOUT=1\n", "etc/default/grub.d/50-cloudimg-settings.cfg": dropIn}, false},
		{"rhel 9", map[string]string{"etc/default/grub": readTestdata(t, "rhel-9.grub")}, true},
		{"fedora 40", map[string]string{"etc/default/grub": readTestdata(t, "fedora-40.grub")}, true},
		{"one default line", map[string]string{"etc/default/grub": `GRUB_CMDLINE_LINUX_DEFAULT="quiet"`}, false},
		{"one bare default line", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX_DEFAULT=net.ifnames=0\n"}, false},
		{"bare word", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX=ro\n"}, false},
		{"empty bare word", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX=\nGRUB_TIMEOUT=1\n"}, false},
		{"single quotes", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX='ro net.ifnames=0'\n"}, false},
		{"continued line", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX=\"ro \\\n  net.ifnames=0\"\n"}, false},
		{"open quote across lines", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX=\"ro\nnet.ifnames=0\"\nGRUB_TIMEOUT=1"}, false},
		{"export", map[string]string{"etc/default/grub": "export GRUB_CMDLINE_LINUX=\"ro\"\n"}, false},
		{"trailing comment", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX=\"ro\" # set by the image builder\n"}, false},
		{"built on itself", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX=\"ro\"\nGRUB_CMDLINE_LINUX=\"${GRUB_CMDLINE_LINUX} net.ifnames=0\"\n"}, false},
		{"single quotes, a comment after", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX_DEFAULT='quiet splash' # the builder's\nGRUB_CMDLINE_LINUX='ro' # the builder's\n"}, false},
		{"default built on itself", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT splash\"\nGRUB_CMDLINE_LINUX=\"\"\n"}, false},
		{"quotes mixed", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX\"' net.ifnames=0'\n"}, false},
		{"bare, escaped blank", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX_DEFAULT=splash\\ quiet\nGRUB_CMDLINE_LINUX=\"ro\"\n"}, false},
		{"continued default", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet \\\n  splash\"\nGRUB_CMDLINE_LINUX=\"\"\n"}, false},
		{"export, a comment after", map[string]string{"etc/default/grub": "export GRUB_CMDLINE_LINUX=\"ro quiet\" # c\n"}, false},
		// A builder's defaults that set no command line at all: the next
		// grub-mkconfig writes none, so fix must add one.
		{"no command line", map[string]string{"etc/default/grub": "GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\n"}, false},
		{"nothing but a comment", map[string]string{"etc/default/grub": "# written by the image builder\n"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := tree(t, c.files).Name
			linux, def := sourceDefaults(t, root)
			// The boot configuration as the defaults generated it, so
			// KRN008 passes before and must still pass after.
			params := strings.Join(strings.Fields("root=UUID=abc ro "+linux+" "+def), " ")
			boot := map[string]string{"boot/grub/grub.cfg": "menuentry 'Linux' {\n\tlinux\t/boot/vmlinuz-6.1.0-13-amd64 " + params + "\n}\n"}
			if c.bls {
				boot = map[string]string{"boot/loader/entries/x.conf": "title Linux\nversion 6.1.0-13\nlinux /vmlinuz-6.1.0-13\noptions " + params + "\n"}
			}
			for p, text := range boot {
				os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
				os.WriteFile(filepath.Join(root, p), []byte(text), 0o644)
			}
			target, _ := OpenDir(root)
			if s := statuses(t, target, "KRN001", "KRN008"); s["KRN001"] != Failed && !strings.Contains(def, "console=ttyS0") || s["KRN008"] != Passed {
				t.Fatalf("before fix: %v", s)
			}
			plan, err := PlanFix(target, Catalog(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := plan.Apply(target); err != nil {
				t.Fatal(err)
			}
			fresh, _ := OpenDir(root)
			if s := statuses(t, fresh, "KRN001", "KRN002", "KRN003", "KRN008"); s["KRN001"] != Passed || s["KRN002"] != Passed || s["KRN003"] != Passed || s["KRN008"] != Passed {
				t.Errorf("after fix: %v", s)
			}
			linux, def = sourceDefaults(t, root)
			words := strings.Fields(linux + " " + def)
			for _, want := range []string{"console=ttyS0", "earlyprintk=ttyS0,115200", "rootdelay=300"} {
				n := 0
				for _, w := range words {
					if strings.HasPrefix(w, want) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%s %d times in what sh sources: GRUB_CMDLINE_LINUX=%q GRUB_CMDLINE_LINUX_DEFAULT=%q", want, n, linux, def)
				}
			}
			for _, want := range []string{"earlyprintk=ttyS0,115200", "rootdelay=300"} {
				if !contains(strings.Fields(linux), want) {
					t.Errorf("GRUB_CMDLINE_LINUX=%q lacks %s, which every entry needs", linux, want)
				}
			}
			// vhdprep's own reading of the defaults agrees with sh's.
			for _, l := range kernel.FindCmdlines(fresh.Guest.Root) {
				if l.Kind == kernel.KindDefaultGrub && strings.Join(strings.Fields(l.Cmdline.String()), " ") != strings.Join(words, " ") {
					t.Errorf("vhdprep reads the defaults as %q, sh as %q", l.Cmdline.String(), strings.Join(words, " "))
				}
			}
			if t.Failed() {
				for _, name := range []string{"etc/default/grub", "etc/default/grub.d/50-cloudimg-settings.cfg"} {
					if b, err := os.ReadFile(filepath.Join(root, name)); err == nil {
						t.Logf("%s after fix:\n%s", name, b)
					}
				}
			}
		})
	}
}

func testRequireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

// A BLS entry may spread its options over several lines, which boot
// loaders join in order (Boot Loader Specification). check reads them
// together, and fix removes from each and adds, to the last, only what
// none holds.
func TestFixBLSOptionsOnSeveralLines(t *testing.T) {
	entry := "boot/loader/entries/abc-6.5.6.conf"
	root := tree(t, map[string]string{entry: "title Fedora Linux\nversion 6.5.6\nlinux /vmlinuz-6.5.6\n" +
		"options root=UUID=abc ro rhgb console=ttyS0,115200n8\n" +
		"options\tquiet rootdelay=300\n"}).Name
	target, _ := OpenDir(root)
	before := statuses(t, target, "KRN001", "KRN002", "KRN003", "KRN004")
	if want := map[string]Status{"KRN001": Passed, "KRN002": Failed, "KRN003": Passed, "KRN004": Failed}; !maps.Equal(before, want) {
		t.Fatalf("before fix: %v, want %v", before, want)
	}
	plan, err := PlanFix(target, Catalog(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, entry))
	want := "title Fedora Linux\nversion 6.5.6\nlinux /vmlinuz-6.5.6\n" +
		"options root=UUID=abc ro console=ttyS0,115200n8\n" +
		"options\trootdelay=300 earlyprintk=ttyS0,115200\n"
	if string(b) != want {
		t.Errorf("the entry after fix:\n%s\nwant:\n%s", b, want)
	}
	fresh, _ := OpenDir(root)
	for id, s := range statuses(t, fresh, "KRN001", "KRN002", "KRN003", "KRN004") {
		if s != Passed {
			t.Errorf("%s after fix: %s", id, s)
		}
	}
}
