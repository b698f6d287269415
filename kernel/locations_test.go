package kernel

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// loc is what a test expects of a Location.
type loc struct {
	path   string
	line   int
	kind   string
	entry  string
	kernel string
	text   string
}

func TestFindCmdlines(t *testing.T) {
	for _, c := range []struct {
		name string
		fsys fstest.MapFS
		want []loc
	}{
		{"debian update-grub", fstest.MapFS{
			"etc/default/grub": {Data: []byte("GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"\"\n")},
			"boot/grub/grub.cfg": {Data: []byte(`### BEGIN /etc/grub.d/10_linux ###
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux $menuentry_id_option 'gnulinux-simple-abc' {
	load_video
	linux	/boot/vmlinuz-6.1.0-13-amd64 root=UUID=abc ro  quiet
	initrd	/boot/initrd.img-6.1.0-13-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-abc' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-13-amd64' --class debian {
		linux	/boot/vmlinuz-6.1.0-13-amd64 root=UUID=abc ro  quiet
	}
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)' --class debian {
		linux	/boot/vmlinuz-6.1.0-13-amd64 root=UUID=abc ro single
	}
}
menuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {
	fwsetup
}
`)},
		}, []loc{
			{"/etc/default/grub", 3, KindDefaultGrub, "defaults for grub-mkconfig", "", "quiet"},
			{"/boot/grub/grub.cfg", 4, KindGrubCfg, "Debian GNU/Linux", "/boot/vmlinuz-6.1.0-13-amd64", "root=UUID=abc ro  quiet"},
			{"/boot/grub/grub.cfg", 9, KindGrubCfg, "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-13-amd64", "/boot/vmlinuz-6.1.0-13-amd64", "root=UUID=abc ro  quiet"},
			{"/boot/grub/grub.cfg", 12, KindGrubCfg, "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)", "/boot/vmlinuz-6.1.0-13-amd64", "root=UUID=abc ro single"},
		}},
		{"rhel 8 BLS and grubenv", fstest.MapFS{
			"etc/default/grub":    {Data: []byte("GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rhgb quiet\"\nGRUB_ENABLE_BLSCFG=true\n")},
			"boot/grub2/grubenv":  {Data: []byte("# GRUB Environment Block\nsaved_entry=abc-4.18.0-513.el8.x86_64\nkernelopts=root=/dev/mapper/rhel-root ro crashkernel=auto rhgb quiet \nboot_success=0\n" + strings.Repeat("#", 900))},
			"boot/grub2/grub.cfg": {Data: []byte("set default=\"${saved_entry}\"\ninsmod blscfg\nblscfg\n")},
			"boot/loader/entries/abc-4.18.0-513.el8.x86_64.conf": {Data: []byte("title Red Hat Enterprise Linux (4.18.0-513.el8.x86_64) 8.9 (Ootpa)\nversion 4.18.0-513.el8.x86_64\nlinux /vmlinuz-4.18.0-513.el8.x86_64\ninitrd /initramfs-4.18.0-513.el8.x86_64.img $tuned_initrd\noptions $kernelopts $tuned_params\nid rhel-20231012-4.18.0-513.el8.x86_64\n")},
		}, []loc{
			{"/etc/default/grub", 2, KindDefaultGrub, "defaults for grub-mkconfig", "", "crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rhgb quiet"},
			{"/boot/grub2/grubenv", 3, KindGrubenv, "", "", "root=/dev/mapper/rhel-root ro crashkernel=auto rhgb quiet "},
			{"/boot/loader/entries/abc-4.18.0-513.el8.x86_64.conf", 5, KindBLS, "Red Hat Enterprise Linux (4.18.0-513.el8.x86_64) 8.9 (Ootpa)", "4.18.0-513.el8.x86_64", "root=/dev/mapper/rhel-root ro crashkernel=auto rhgb quiet  $tuned_params"},
		}},
		{"rhel 9 BLS, grub.cfg on the ESP", fstest.MapFS{
			"boot/efi/EFI/redhat/grub.cfg":                     {Data: []byte("search --no-floppy --fs-uuid --set=dev abc\nset prefix=($dev)/grub2\nexport $prefix\nconfigfile $prefix/grub.cfg\n")},
			"boot/loader/entries/x-5.14.0-362.el9.x86_64.conf": {Data: []byte("title RHEL 9\nversion 5.14.0-362.el9.x86_64\nlinux /vmlinuz-5.14.0-362.el9.x86_64\noptions root=UUID=abc ro console=ttyS0,115200n8\n")},
		}, []loc{
			{"/boot/loader/entries/x-5.14.0-362.el9.x86_64.conf", 4, KindBLS, "RHEL 9", "5.14.0-362.el9.x86_64", "root=UUID=abc ro console=ttyS0,115200n8"},
		}},
		{"arch grub on the ESP", fstest.MapFS{
			"boot/efi/EFI/arch/grub.cfg": {Data: []byte("menuentry \"Arch Linux\" {\n\tlinux /vmlinuz-linux root=UUID=abc rw loglevel=3 quiet\n\tinitrd /initramfs-linux.img\n}\n")},
		}, []loc{
			{"/boot/efi/EFI/arch/grub.cfg", 2, KindGrubCfg, "Arch Linux", "/vmlinuz-linux", "root=UUID=abc rw loglevel=3 quiet"},
		}},
		{"alpine extlinux", fstest.MapFS{
			"boot/extlinux.conf": {Data: []byte("DEFAULT menu.c32\nLABEL lts\n  MENU LABEL Linux lts\n  LINUX vmlinuz-lts\n  INITRD initramfs-lts\n  APPEND root=UUID=abc modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4\n")},
		}, []loc{
			{"/boot/extlinux.conf", 6, KindExtlinux, "lts", "vmlinuz-lts", "root=UUID=abc modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4"},
		}},
		{"tabs separate keys from values", fstest.MapFS{
			"boot/loader/entries/a.conf":  {Data: []byte("title\tA\nversion\t6.5.0\noptions\troot=UUID=abc ro\n")},
			"boot/extlinux/extlinux.conf": {Data: []byte("label\tlinux\n\tkernel\t/boot/vmlinuz\n\tappend\troot=/dev/sda1 quiet\n")},
		}, []loc{
			{"/boot/loader/entries/a.conf", 3, KindBLS, "A", "6.5.0", "root=UUID=abc ro"},
			{"/boot/extlinux/extlinux.conf", 3, KindExtlinux, "linux", "/boot/vmlinuz", "root=/dev/sda1 quiet"},
		}},
		{"grub words are separated by spaces and tabs only", fstest.MapFS{
			"boot/grub/grub.cfg": {Data: []byte("menuentry 'a' {\n\tlinux\v/vmlinuz quiet\n\tlinux /vmlinuz\u00a0x ro\n}\n")},
		}, []loc{
			{"/boot/grub/grub.cfg", 3, KindGrubCfg, "a", "/vmlinuz\u00a0x", "ro"},
		}},
		{"systemd-boot and UKI", fstest.MapFS{
			"etc/kernel/cmdline":                 {Data: []byte("root=UUID=abc rw console=ttyS0\n")},
			"boot/loader/entries/abc-6.5.0.conf": {Data: []byte("title      Fedora Linux\nversion    6.5.0\nlinux      /abc/6.5.0/linux\noptions    root=UUID=abc rw console=ttyS0\n")},
		}, []loc{
			{"/boot/loader/entries/abc-6.5.0.conf", 4, KindBLS, "Fedora Linux", "6.5.0", "root=UUID=abc rw console=ttyS0"},
			{"/etc/kernel/cmdline", 1, KindKernelCmdline, "", "", "root=UUID=abc rw console=ttyS0"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := FindCmdlines(c.fsys)
			if len(got) != len(c.want) {
				t.Fatalf("found %d command lines, want %d: %+v", len(got), len(c.want), got)
			}
			for i, w := range c.want {
				g := got[i]
				if (loc{g.Path, g.Line, g.Kind, g.Entry, g.Kernel, g.Cmdline.String()}) != w {
					t.Errorf("location %d:\n got %+v\nwant %+v", i, loc{g.Path, g.Line, g.Kind, g.Entry, g.Kernel, g.Cmdline.String()}, w)
				}
			}
		})
	}
}

// defaultGrubText reads text as /etc/default/grub.
func defaultGrubText(t *testing.T, text string) []Location {
	t.Helper()
	return parseDefaultGrub([]grubFile{{"etc/default/grub", text}})
}

func TestDefaultGrub(t *testing.T) {
	for _, c := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"double quotes", `GRUB_CMDLINE_LINUX="console=tty1 console=ttyS0,115200"`, 1, "console=tty1 console=ttyS0,115200"},
		{"single quotes keep $", "GRUB_CMDLINE_LINUX='a=$x \"b\"'", 1, `a=$x "b"`},
		{"escapes", `GRUB_CMDLINE_LINUX="a=\"x y\" \$z \\"`, 1, `a="x y" $z \`},
		{"bare with comment", "GRUB_CMDLINE_LINUX=quiet # the rest is a comment", 1, "quiet"},
		{"export", "export GRUB_CMDLINE_LINUX=\"ro\"", 1, "ro"},
		{"continued by backslash", "x=1\nGRUB_CMDLINE_LINUX=\"a \\\nb\"", 2, "a b"},
		{"continued in quotes", "GRUB_CMDLINE_LINUX=\"a\nb\"\nGRUB_TIMEOUT=1", 1, "a\nb"},
		{"expands earlier variables", "GRUB_CMDLINE_LINUX=\"ro\"\nGRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX ${EXTRA}console=ttyS0\"", 2, "ro console=ttyS0"},
		{"last wins, both joined", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\nGRUB_CMDLINE_LINUX=\"a\"\nGRUB_CMDLINE_LINUX=\"b\"", 3, "b quiet splash"},
		{"only the default", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"", 1, "quiet"},
		{"cloud-init drop-in style", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX console=ttyS0 earlyprintk=ttyS0\"", 1, "console=ttyS0 earlyprintk=ttyS0"},
		{"commented out", "#GRUB_CMDLINE_LINUX=\"quiet\"\nGRUB_CMDLINE_LINUX=\"ro\"", 2, "ro"},
		{"command substitution is left out", "GRUB_CMDLINE_LINUX=\"a $([ -x /usr/sbin/rhcrashkernel-param ] && /usr/sbin/rhcrashkernel-param || :) rhgb $(f (x)) quiet\"", 1, "a  rhgb  quiet"},
		{"unclosed substitution", "GRUB_CMDLINE_LINUX=\"a $(b c\"", 1, "a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			locs := defaultGrubText(t, c.text)
			if len(locs) != 1 || locs[0].Line != c.line || locs[0].Cmdline.String() != c.want {
				t.Fatalf("got %+v, want line %d %q", locs, c.line, c.want)
			}
		})
	}
	// Defaults that assign neither variable still make the next grub.cfg:
	// an empty command line, at no line of the file.
	if locs := defaultGrubText(t, "GRUB_TIMEOUT=5\n"); len(locs) != 1 || locs[0].Line != 0 || locs[0].Var != VarCmdlineLinux || locs[0].Cmdline.String() != "" {
		t.Fatalf("no GRUB_CMDLINE variable, got %+v", locs)
	}
}

// FuzzDefaultGrub: any text parses without panicking, to a line inside
// it; a plain double-quoted value comes back as written; an edit that
// adds and removes nothing leaves the text as it was, and any other edits
// it without panicking.
func FuzzDefaultGrub(f *testing.F) {
	f.Add("GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX console=ttyS0\"\n", "quiet splash")
	f.Add("export GRUB_CMDLINE_LINUX_DEFAULT='a \\\nb' # c\n", "ro")
	f.Add("GRUB_CMDLINE_LINUX=\"a\\\n${X}b\n", "root=/dev/sda1")
	f.Fuzz(func(t *testing.T, text, value string) {
		for _, l := range defaultGrubText(t, text) {
			if (l.Line < 1 && l.Cmdline.String() != "") || l.Line < 0 || l.Line > strings.Count(text, "\n")+1 {
				t.Fatalf("line %d of %q", l.Line, text)
			}
		}
		if got := EditDefaultGrub([]string{text}, nil, nil)[0]; got != text {
			t.Fatalf("an empty edit of %q gave %q", text, got)
		}
		EditDefaultGrub([]string{text, value}, []string{"console=ttyS0", value}, []string{"quiet", value})
		if strings.ContainsAny(value, "\"\\$`\n") {
			return
		}
		locs := defaultGrubText(t, fmt.Sprintf("%s\nGRUB_CMDLINE_LINUX=\"%s\"\n", "# header", value))
		if len(locs) != 1 || locs[0].Cmdline.String() != strings.TrimSpace(value) || locs[0].Line != 2 {
			t.Fatalf("value %q read as %+v", value, locs)
		}
	})
}

func TestGeneratedConfigsAndKernelopts(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/default/grub":             {Data: []byte("GRUB_CMDLINE_LINUX=\"quiet\"\n")},
		"boot/grub2/grubenv":           {Data: []byte("kernelopts=root=/dev/sda1 quiet\n")},
		"boot/grub2/grub.cfg":          {Data: []byte("blscfg\n")},
		"boot/efi/EFI/redhat/grub.cfg": {Data: []byte("configfile $prefix/grub.cfg\n")},
		"boot/loader/entries/a.conf":   {Data: []byte("options $kernelopts\n")},
		"boot/loader/entries/b.conf":   {Data: []byte("options root=/dev/sda1\n")},
		"boot/loader/entries/c.txt":    {Data: []byte("options x\n")},
	}
	got := strings.Join(GeneratedConfigs(fsys), " ")
	if want := "boot/grub2/grub.cfg boot/efi/EFI/redhat/grub.cfg boot/grub2/grubenv boot/loader/entries/a.conf boot/loader/entries/b.conf"; got != want {
		t.Fatalf("GeneratedConfigs = %q, want %q", got, want)
	}
	expands := map[string]bool{}
	for _, l := range FindCmdlines(fsys) {
		if l.Kind == KindBLS {
			expands[l.Path] = l.Kernelopts
		}
	}
	if !expands["/boot/loader/entries/a.conf"] || expands["/boot/loader/entries/b.conf"] {
		t.Fatalf("Kernelopts per entry: %v", expands)
	}
}

// Ubuntu's cloud images set the console in a drop-in that grub-mkconfig
// sources after /etc/default/grub.
func TestDefaultGrubDropIns(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/default/grub": {Data: []byte("GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\nGRUB_CMDLINE_LINUX=\"\"\n")},
		"etc/default/grub.d/50-cloudimg-settings.cfg": {Data: []byte("GRUB_TIMEOUT=0\n# Set the default commandline\nGRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=ttyS0\"\n")},
		"etc/default/grub.d/60-azure.cfg":             {Data: []byte("GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX earlyprintk=ttyS0\"\n")},
		"etc/default/grub.d/README":                   {Data: []byte("GRUB_CMDLINE_LINUX=\"not sourced\"\n")},
	}
	locs := FindCmdlines(fsys)
	if len(locs) != 1 {
		t.Fatalf("got %+v", locs)
	}
	l := locs[0]
	if l.Path != "/etc/default/grub.d/60-azure.cfg" || l.Line != 1 || l.Cmdline.String() != "earlyprintk=ttyS0 console=tty1 console=ttyS0" {
		t.Fatalf("got %s:%d %q", l.Path, l.Line, l.Cmdline.String())
	}
	if got := strings.Join(l.Sources, " "); got != "/etc/default/grub /etc/default/grub.d/50-cloudimg-settings.cfg /etc/default/grub.d/60-azure.cfg" {
		t.Fatalf("sources %s", got)
	}
}

// GRUB legacy, as CentOS 6 ships it: grub.conf, with menu.lst a symlink to
// it (read once), each kernel line with its entry's title.
func TestGrubLegacy(t *testing.T) {
	conf, err := os.ReadFile("testdata/grub-legacy/centos6-grub.conf")
	if err != nil {
		t.Fatal(err)
	}
	const params = "ro root=/dev/mapper/VolGroup-lv_root rd_NO_LUKS LANG=en_US.UTF-8 rd_LVM_LV=VolGroup/lv_swap rd_NO_MD SYSFONT=latarcyrheb-sun16 crashkernel=auto rd_LVM_LV=VolGroup/lv_root  KEYBOARDTYPE=pc KEYTABLE=us rd_NO_DM rhgb quiet"
	want := []loc{
		{"/boot/grub/grub.conf", 16, KindGrubLegacy, "CentOS 6 (2.6.32-754.el6.x86_64)", "/vmlinuz-2.6.32-754.el6.x86_64", params},
		{"/boot/grub/grub.conf", 20, KindGrubLegacy, "CentOS (2.6.32-71.el6.x86_64)", "/vmlinuz-2.6.32-71.el6.x86_64", params},
	}
	for _, c := range []struct {
		name string
		fsys fstest.MapFS
		want []loc
	}{
		{"grub.conf and menu.lst linked to it", fstest.MapFS{
			"boot/grub/grub.conf": {Data: conf},
			"boot/grub/menu.lst":  {Data: []byte("./grub.conf"), Mode: fs.ModeSymlink},
		}, want},
		{"menu.lst alone", fstest.MapFS{"boot/grub/menu.lst": {Data: conf}}, []loc{
			{"/boot/grub/menu.lst", 16, KindGrubLegacy, want[0].entry, want[0].kernel, params},
			{"/boot/grub/menu.lst", 20, KindGrubLegacy, want[1].entry, want[1].kernel, params},
		}},
		{"a dangling menu.lst", fstest.MapFS{"boot/grub/menu.lst": {Data: []byte("/nowhere"), Mode: fs.ModeSymlink}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := FindCmdlines(c.fsys)
			if len(got) != len(c.want) {
				t.Fatalf("%d locations %+v, want %d", len(got), got, len(c.want))
			}
			for i, w := range c.want {
				g := got[i]
				if g.Path != w.path || g.Line != w.line || g.Kind != w.kind || g.Entry != w.entry || g.Kernel != w.kernel || g.Cmdline.String() != w.text {
					t.Errorf("location %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func FuzzGrubLegacy(f *testing.F) {
	conf, err := os.ReadFile("testdata/grub-legacy/centos6-grub.conf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(conf)
	f.Add([]byte("title x\nkernel\nkernel /v\n\tkernel /v a=b \"c d\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, l := range FindCmdlines(fstest.MapFS{"boot/grub/menu.lst": {Data: b}}) {
			if l.Kind != KindGrubLegacy || l.Line < 1 || l.Kernel == "" {
				t.Fatalf("location %+v", l)
			}
			checkParams(t, lineOf(b, l.Line), "kernel", l)
		}
	})
}
