package kernel

import (
	"slices"
	"strings"
	"testing"
)

func TestEditLine(t *testing.T) {
	for _, c := range []struct{ kind, line, want string }{
		{KindGrubCfg, "\tlinux /vmlinuz root=UUID=x ro quiet", "\tlinux /vmlinuz root=UUID=x ro console=ttyS0"},
		{KindBLS, "options root=UUID=x quiet", "options root=UUID=x console=ttyS0"},
		{KindExtlinux, "  APPEND root=/dev/sda1 quiet", "  APPEND root=/dev/sda1 console=ttyS0"},
		{KindKernelCmdline, "root=UUID=x quiet", "root=UUID=x console=ttyS0"},
		{KindGrubenv, "kernelopts=root=UUID=x quiet", "kernelopts=root=UUID=x console=ttyS0"},
		{KindGrubLegacy, "\tkernel /vmlinuz ro quiet", "\tkernel /vmlinuz ro console=ttyS0"},
	} {
		if got, ok := EditLine(c.kind, c.line, []string{"console=ttyS0"}, []string{"quiet"}); !ok || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.kind, got, ok, c.want)
		}
	}
	if _, ok := EditLine(KindBLS, "title Debian", nil, nil); ok {
		t.Error("a BLS title line was taken for options")
	}
}

func TestPadGrubenv(t *testing.T) {
	b, ok := PadGrubenv([]byte("# GRUB Environment Block\nkernelopts=root=x console=ttyS0\n####"))
	if !ok || len(b) != GrubenvSize || !strings.HasSuffix(string(b), "#") {
		t.Fatalf("padded to %d bytes (%v)", len(b), ok)
	}
	if _, ok := PadGrubenv([]byte(strings.Repeat("x", GrubenvSize+1))); ok {
		t.Error("a block larger than 1024 bytes was padded")
	}
}

// EditDefaultGrub reads the files as the shell sources them: each case's
// files, edited with add and remove, become want.
func TestEditDefaultGrub(t *testing.T) {
	console, quiet := []string{"console=ttyS0"}, []string{"quiet"}
	for _, c := range []struct {
		name        string
		files       []string
		add, remove []string
		want        []string
	}{
		{"double quotes", []string{"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\nGRUB_CMDLINE_LINUX=\"ro\"\n"}, console, quiet,
			[]string{"GRUB_CMDLINE_LINUX_DEFAULT=\"splash\"\nGRUB_CMDLINE_LINUX=\"ro console=ttyS0\"\n"}},
		// An assignment that goes on past its line keeps its layout: a new
		// one after it builds on it.
		{"continued, added to", []string{"GRUB_CMDLINE_LINUX=\"ro \\\n  quiet\"\n"}, console, nil,
			[]string{"GRUB_CMDLINE_LINUX=\"ro \\\n  quiet\"\nGRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX console=ttyS0\"\n"}},
		// A bare word gains quotes when a parameter joins it.
		{"bare word", []string{"GRUB_CMDLINE_LINUX=ro\n"}, console, nil, []string{"GRUB_CMDLINE_LINUX=\"ro console=ttyS0\"\n"}},
		{"bare word emptied", []string{"GRUB_CMDLINE_LINUX_DEFAULT=quiet\n"}, nil, quiet, []string{"GRUB_CMDLINE_LINUX_DEFAULT=\n"}},

		// What a regular expression over each line got wrong.
		{"single quotes, a comment after", []string{"GRUB_CMDLINE_LINUX_DEFAULT='quiet splash' # the builder's\n"}, nil, quiet,
			[]string{"GRUB_CMDLINE_LINUX_DEFAULT='splash' # the builder's\n"}},
		{"double quotes, a comment after", []string{"GRUB_CMDLINE_LINUX=\"ro quiet\" # the builder's\n"}, console, quiet,
			[]string{"GRUB_CMDLINE_LINUX=\"ro console=ttyS0\" # the builder's\n"}},
		{"export", []string{"export GRUB_CMDLINE_LINUX=\"quiet\"\n"}, console, quiet, []string{"export GRUB_CMDLINE_LINUX=\"console=ttyS0\"\n"}},
		{"continued, removed from", []string{"GRUB_CMDLINE_LINUX_DEFAULT=\"splash \\\n  quiet\"\n"}, nil, quiet, []string{"GRUB_CMDLINE_LINUX_DEFAULT=\"splash\"\n"}},
		{"open quote, removed from", []string{"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\nsplash\"\n"}, nil, quiet, []string{"GRUB_CMDLINE_LINUX_DEFAULT=\"\nsplash\"\n"}},
		{"bare, escaped blank", []string{"GRUB_CMDLINE_LINUX_DEFAULT=$GRUB_CMDLINE_LINUX_DEFAULT\\ quiet\n"}, nil, quiet,
			[]string{"GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT\"\n"}},
		{"quotes mixed", []string{"GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX\"' quiet'\n"}, console, quiet,
			[]string{"GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX console=ttyS0\"\n"}},
		{"a variable before a letter", []string{"GRUB_CMDLINE_LINUX=\"$X\"'y=1 quiet'\n"}, nil, quiet, []string{"GRUB_CMDLINE_LINUX=\"${X}y=1\"\n"}},
		{"escapes", []string{`GRUB_CMDLINE_LINUX="a=\"x y\" quiet"` + "\n"}, nil, quiet, []string{`GRUB_CMDLINE_LINUX="a=\"x y\""` + "\n"}},
		{"not an assignment inside a value", []string{"GRUB_CMDLINE_LINUX_DEFAULT=\"splash\nGRUB_CMDLINE_LINUX=quiet\"\n"}, console, quiet,
			[]string{"GRUB_CMDLINE_LINUX_DEFAULT=\"splash\nGRUB_CMDLINE_LINUX=quiet\"\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\n"}},
		{"the last wins", []string{"GRUB_CMDLINE_LINUX=\"quiet\"\nGRUB_CMDLINE_LINUX=\"ro\"\n"}, console, quiet,
			[]string{"GRUB_CMDLINE_LINUX=\"\"\nGRUB_CMDLINE_LINUX=\"ro console=ttyS0\"\n"}},

		// Expansions stay as written.
		{"built on the default", []string{"GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX_DEFAULT foo\"\n"}, console, nil,
			[]string{"GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX_DEFAULT foo console=ttyS0\"\n"}},
		{"built on itself, braces", []string{"GRUB_CMDLINE_LINUX=\"ro\"\nGRUB_CMDLINE_LINUX=\"${GRUB_CMDLINE_LINUX} quiet\"\n"}, console, quiet,
			[]string{"GRUB_CMDLINE_LINUX=\"ro\"\nGRUB_CMDLINE_LINUX=\"${GRUB_CMDLINE_LINUX} console=ttyS0\"\n"}},
		{"command substitution", []string{"GRUB_CMDLINE_LINUX=\"crashkernel=auto $([ -x /usr/sbin/rhcrashkernel-param ] && /usr/sbin/rhcrashkernel-param || :) rhgb quiet\"\n"}, nil, []string{"rhgb", "quiet"},
			[]string{"GRUB_CMDLINE_LINUX=\"crashkernel=auto $([ -x /usr/sbin/rhcrashkernel-param ] && /usr/sbin/rhcrashkernel-param || :)\"\n"}},
		// What this parser does not read it does not write: the word stays,
		// and the parameter goes in a new assignment after it.
		{"unknown expansion", []string{"GRUB_CMDLINE_LINUX=\"${EXTRA:-quiet} quiet\"\n"}, console, quiet,
			[]string{"GRUB_CMDLINE_LINUX=\"${EXTRA:-quiet} quiet\"\nGRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX console=ttyS0\"\n"}},

		// The drop-ins of /etc/default/grub.d are sourced after the file.
		{"drop-in builds on the file", []string{"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"\"\n", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX rootdelay=300\"\n"}, console, quiet,
			[]string{"GRUB_CMDLINE_LINUX_DEFAULT=\"\"\nGRUB_CMDLINE_LINUX=\"\"\n", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX rootdelay=300 console=ttyS0\"\n"}},
		{"given by the drop-in's default", []string{"GRUB_CMDLINE_LINUX=\"ro\"\n", "GRUB_CMDLINE_LINUX_DEFAULT=\"console=ttyS0\"\n"}, console, nil,
			[]string{"GRUB_CMDLINE_LINUX=\"ro\"\n", "GRUB_CMDLINE_LINUX_DEFAULT=\"console=ttyS0\"\n"}},

		// No file assigns GRUB_CMDLINE_LINUX: a new assignment ends the first.
		{"assignment missing", []string{"GRUB_TIMEOUT=5\n"}, console, nil, []string{"GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\n"}},
		{"assignment missing, a drop-in's default", []string{"GRUB_TIMEOUT=5", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"}, console, quiet,
			[]string{"GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\n", "GRUB_CMDLINE_LINUX_DEFAULT=\"\"\n"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := EditDefaultGrub(c.files, c.add, c.remove)
			if !slices.Equal(got, c.want) {
				t.Fatalf("got\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}
