package lint

import (
	"strings"
	"testing"
)

func TestGeneratedConfigAgreesWithDefaults(t *testing.T) {
	const (
		dflt     = "etc/default/grub"
		cfg      = "boot/grub/grub.cfg"
		quietDef = "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"\"\n"
	)
	entry := func(title, params string) string {
		return "menuentry '" + title + "' {\n\tlinux\t/boot/vmlinuz-6.1.0-13-amd64 root=UUID=abc ro " + params + "\n}\n"
	}
	updateGrub := map[string]string{"usr/sbin/update-grub": ""}
	grubenv := func(opts string) string { return "# GRUB Environment Block\nkernelopts=" + opts + "\n" }
	cases := []struct {
		name  string
		files map[string]string
		want  Status
		msg   string // in the first finding's message, or the skip reason
		fix   string // in the first finding's fix
		line  int
	}{
		{"no defaults", map[string]string{cfg: entry("Debian", "quiet")}, Skipped, "no /etc/default/grub", "", 0},
		{"grub.cfg unreadable", map[string]string{dflt: quietDef, cfg + "/x": ""}, Skipped, "/boot/grub/grub.cfg is not readable", "", 0},
		{"nothing generated", map[string]string{dflt: quietDef}, Skipped, "no generated boot configuration", "", 0},
		{"agree", map[string]string{dflt: quietDef, cfg: entry("Debian", " quiet")}, Passed, "", "", 0},
		{"GRUB's own tokens", map[string]string{dflt: "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\n", cfg: entry("Ubuntu", "quiet splash $vt_handoff")}, Passed, "", "", 0},
		{"defaults edited, not regenerated", with(updateGrub, map[string]string{dflt: quietDef + "GRUB_CMDLINE_LINUX=\"console=ttyS0,115200n8\"\n", cfg: entry("Debian", "quiet")}),
			Failed, "lacks console=ttyS0,115200n8, which /etc/default/grub:3 sets", "update-grub", 2},
		{"menu edited by hand", map[string]string{dflt: "GRUB_CMDLINE_LINUX=\"\"\n", cfg: entry("Debian", "quiet console=tty1")},
			Failed, "carries quiet console=tty1, which /etc/default/grub:1 does not", "grub-mkconfig -o /boot/grub/grub.cfg", 2},
		{"alike entries are one finding", map[string]string{dflt: "GRUB_CMDLINE_LINUX=\"rootdelay=300\"\n", cfg: entry("Debian", "") + entry("Debian, with Linux 6.1.0-13-amd64", "")},
			Failed, "grub.cfg entry \"Debian\" and 1 more) lacks rootdelay=300", "", 2},
		{"Ubuntu's drop-ins count", map[string]string{dflt: "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\n", "etc/default/grub.d/50-cloudimg-settings.cfg": "GRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=ttyS0\"\n", cfg: entry("Ubuntu", "console=tty1 console=ttyS0 $vt_handoff")}, Passed, "", "", 0},
		{"a drop-in unreadable", map[string]string{dflt: quietDef, "etc/default/grub.d/50-x.cfg/x": "", cfg: entry("Debian", "quiet")}, Skipped, "/etc/default/grub.d/50-x.cfg is not readable", "", 0},
		{"recovery entries carry only GRUB_CMDLINE_LINUX", map[string]string{dflt: quietDef, cfg: entry("Debian", "quiet") + entry("Debian (recovery mode)", "single")}, Passed, "", "", 0},
		{"RHEL 7 command substitution", map[string]string{dflt: "GRUB_CMDLINE_LINUX=\"$([ -x /usr/sbin/rhcrashkernel-param ] && /usr/sbin/rhcrashkernel-param || :) rhgb quiet\"\n", "boot/grub2/grub.cfg": "menuentry 'RHEL' {\n\tlinux16 /vmlinuz-3.10.0 root=UUID=abc ro crashkernel=auto rhgb quiet LANG=en_US.UTF-8\n}\n"},
			Passed, "", "", 0},
		{"RHEL 8 grubenv behind $kernelopts", map[string]string{dflt: "GRUB_CMDLINE_LINUX=\"crashkernel=auto console=ttyS0\"\n", "boot/grub2/grubenv": grubenv("root=/dev/mapper/rhel-root ro crashkernel=auto rhgb"), "boot/loader/entries/a.conf": "title RHEL\noptions $kernelopts $tuned_params\n"},
			Failed, "/boot/grub2/grubenv (grubenv) lacks console=ttyS0, which /etc/default/grub:1 sets and carries rhgb", "grub2-mkconfig -o /boot/grub2/grub.cfg", 2},
		{"RHEL 9 grubenv left over is not read", map[string]string{dflt: "GRUB_CMDLINE_LINUX=\"console=ttyS0\"\n", "boot/grub2/grubenv": grubenv("root=/dev/sda1 quiet"), "boot/loader/entries/a.conf": "title RHEL\noptions root=UUID=abc ro console=ttyS0\n"},
			Passed, "", "", 0},
		{"RHEL 9 BLS options", map[string]string{dflt: "GRUB_CMDLINE_LINUX=\"console=ttyS0\"\n", "boot/loader/entries/a.conf": "title RHEL\noptions root=UUID=abc ro rhgb quiet\n"},
			Failed, "(bls entry \"RHEL\") lacks console=ttyS0", `grubby --update-kernel=ALL --args="console=ttyS0" --remove-args="rhgb quiet"`, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := outcome(t, tree(t, c.files), "KRN008")
			if o.Status != c.want {
				t.Fatalf("status %s, want %s: %+v", o.Status, c.want, o)
			}
			switch {
			case c.want == Skipped && !strings.Contains(o.Reason, c.msg):
				t.Fatalf("reason %q, want %q in it", o.Reason, c.msg)
			case c.want == Failed:
				f := o.Findings[0]
				if len(o.Findings) != 1 || !strings.Contains(f.Message, c.msg) || !strings.Contains(f.Fix, c.fix) || f.Location.Line != c.line || f.Fixable {
					t.Fatalf("findings %+v, want one with %q, fix %q, line %d", o.Findings, c.msg, c.fix, c.line)
				}
			}
		})
	}
}
