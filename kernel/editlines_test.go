package kernel

import (
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

func TestEditDefaultGrub(t *testing.T) {
	text := "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\nGRUB_CMDLINE_LINUX=\"ro\"\n"
	got, added := EditDefaultGrub(text, 2, []string{"console=ttyS0"}, []string{"quiet"})
	if want := "GRUB_CMDLINE_LINUX_DEFAULT=\"splash\"\nGRUB_CMDLINE_LINUX=\"ro console=ttyS0\"\n"; !added || got != want {
		t.Fatalf("got %q (added %v), want %q", got, added, want)
	}
	// An assignment that goes on past its line takes nothing.
	text = "GRUB_CMDLINE_LINUX=\"ro \\\n  quiet\"\n"
	if _, added := EditDefaultGrub(text, 1, []string{"console=ttyS0"}, nil); added {
		t.Error("a parameter was added to an assignment that spans lines")
	}
	// A bare word gains quotes when a parameter joins it.
	if got, _ := EditDefaultGrub("GRUB_CMDLINE_LINUX=ro\n", 1, []string{"console=ttyS0"}, nil); got != "GRUB_CMDLINE_LINUX=\"ro console=ttyS0\"\n" {
		t.Errorf("bare word: %q", got)
	}
}
