package kernel

import (
	"testing"
	"testing/fstest"
)

func TestParseCmdline(t *testing.T) {
	c := ParseCmdline(`BOOT_IMAGE=/vmlinuz root=UUID=abc ro console=tty1 console=ttyS0,115200n8 quiet dyndbg="file x.c +p" -- single`)
	if !c.Has("quiet") || !c.Has("ro") || c.Has("splash") || !c.HasValuePrefix("console", "ttyS0") || c.HasValuePrefix("console", "ttyS") {
		t.Fatalf("%+v", c)
	}
	if v := c.Values("console"); len(v) != 2 || v[1] != "ttyS0,115200n8" {
		t.Fatalf("console values %v", v)
	}
	if v := c.Values("dyndbg"); len(v) != 1 || v[0] != "file x.c +p" {
		t.Fatalf("quoted value %v", v)
	}
	if len(c.Init) != 1 || c.Init[0] != "single" || c.Has("single") {
		t.Fatalf("init args %v", c.Init)
	}
}

func TestFindCmdlines(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/default/grub":                {Data: []byte("GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\nGRUB_CMDLINE_LINUX='console=tty1'\n")},
		"boot/grub/grub.cfg":              {Data: []byte("menuentry 'Ubuntu' --class ubuntu {\n\tlinux\t/boot/vmlinuz-6.5 root=UUID=abc ro  quiet splash\n}\nsubmenu 'Advanced' {\n\tmenuentry 'Ubuntu, recovery' {\n\t\tlinux /boot/vmlinuz-6.5 root=UUID=abc ro recovery nomodeset\n\t}\n}\n")},
		"boot/grub2/grubenv":              {Data: []byte("# GRUB Environment Block\nkernelopts=root=/dev/mapper/rhel-root ro crashkernel=auto rhgb quiet\n#####")},
		"boot/loader/entries/a-5.14.conf": {Data: []byte("title RHEL 8\nversion 5.14\nlinux /vmlinuz-5.14\noptions $kernelopts console=ttyS0\n")},
		"boot/extlinux/extlinux.conf":     {Data: []byte("DEFAULT linux\nLABEL linux\n  LINUX /boot/vmlinuz-lts\n  APPEND root=/dev/sda1 modules=sd-mod,ext4 quiet\n")},
		"etc/kernel/cmdline":              {Data: []byte("root=UUID=abc rw\n")},
	}
	locs := FindCmdlines(fsys)
	byKind := map[string][]Location{}
	for _, l := range locs {
		byKind[l.Kind] = append(byKind[l.Kind], l)
	}
	d := byKind[KindDefaultGrub]
	if len(d) != 1 || d[0].Text != "console=tty1 quiet splash" || d[0].Line != 2 {
		t.Fatalf("default-grub: %+v", d)
	}
	g := byKind[KindGrubCfg]
	if len(g) != 2 || g[0].Entry != "Ubuntu" || g[0].Line != 2 || g[1].Entry != "Ubuntu, recovery" || !g[1].Cmdline.Has("nomodeset") {
		t.Fatalf("grub.cfg: %+v", g)
	}
	b := byKind[KindBLS]
	if len(b) != 1 || b[0].Entry != "RHEL 8" || !b[0].Cmdline.Has("rhgb") || !b[0].Cmdline.HasValuePrefix("console", "ttyS0") {
		t.Fatalf("BLS with $kernelopts expanded: %+v", b)
	}
	if len(byKind[KindGrubenv]) != 1 || len(byKind[KindExtlinux]) != 1 || len(byKind[KindKernelCmdline]) != 1 {
		t.Fatalf("locations %+v", byKind)
	}
	if n := len(BootEntries(locs)); n != len(locs)-1 {
		t.Fatalf("BootEntries kept %d of %d", n, len(locs))
	}
}

func FuzzParseCmdline(f *testing.F) {
	f.Add(`root=UUID=x ro quiet console=ttyS0,115200 a="b c" -- single`)
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseCmdline(s)
		for _, p := range c.Params {
			if p.Key == "" && !p.HasValue {
				t.Fatalf("empty parameter from %q", s)
			}
		}
	})
}

func TestEditParams(t *testing.T) {
	for _, c := range []struct {
		in, want string
		add      []string
		remove   []string
	}{
		{"quiet", "console=ttyS0,115200n8", []string{"console=ttyS0,115200n8"}, []string{"quiet"}},
		{"root=UUID=x ro  quiet splash", "root=UUID=x ro console=ttyS0", []string{"console=ttyS0"}, []string{"quiet", "splash"}},
		{"rhgb quiet crashkernel=auto", "crashkernel=auto", nil, []string{"rhgb", "quiet"}},
		{"console=tty1 console=ttyS0,9600", "console=tty1 console=ttyS0,9600 rootdelay=300", []string{"console=ttyS0,115200n8", "rootdelay=300"}, nil},
		{`a="x quiet y" quiet`, `a="x quiet y"`, nil, []string{"quiet"}},
		{"", "earlyprintk=ttyS0", []string{"earlyprintk=ttyS0"}, nil},
		{"crashkernel=auto ro", "ro", nil, []string{"crashkernel=auto"}},
		{"crashkernel=256M ro", "crashkernel=256M ro", nil, []string{"crashkernel=auto"}},
	} {
		if got := EditParams(c.in, c.add, c.remove); got != c.want {
			t.Errorf("EditParams(%q, %v, %v) = %q, want %q", c.in, c.add, c.remove, got, c.want)
		}
	}
}
