package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A CentOS 6 image boots through GRUB legacy: every KRN rule reads its
// grub.conf, and fix edits its kernel lines as it does grub.cfg's, through
// the file menu.lst links to, which stays a link.
func TestGrubLegacyKernelRules(t *testing.T) {
	conf, err := os.ReadFile("../kernel/testdata/grub-legacy/centos6-grub.conf")
	if err != nil {
		t.Fatal(err)
	}
	target := tree(t, map[string]string{
		"boot/grub/grub.conf":                string(conf),
		"boot/grub/menu.lst":                 "->./grub.conf",
		"etc/grub.conf":                      "->../boot/grub/grub.conf",
		"boot/vmlinuz-2.6.32-754.el6.x86_64": "",
		"boot/vmlinuz-2.6.32-71.el6.x86_64":  "",
	})
	ids := []string{"KRN001", "KRN002", "KRN003", "KRN004", "KRN005", "KRN006"}
	for _, id := range ids {
		o := outcome(t, target, id)
		if o.Status != Failed || len(o.Findings) != 2 {
			t.Fatalf("%s before fix: %s %+v, want a finding for each of the two kernel lines", id, o.Status, o.Findings)
		}
		if f := o.Findings[0]; f.Location.File != "/boot/grub/grub.conf" || f.Location.Line != 16 || !strings.Contains(f.Message, `grub-legacy entry "CentOS 6 (2.6.32-754.el6.x86_64)"`) {
			t.Errorf("%s: finding %+v", id, f)
		}
	}
	plan, err := PlanFix(target, Catalog(), nil, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range plan.Rules {
		if r.Error != "" {
			t.Fatalf("%s: %s", r.ID, r.Error)
		}
	}
	if err := plan.Apply(target); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(target.Name, "boot/grub/grub.conf"))
	want := strings.ReplaceAll(string(conf), "crashkernel=auto rd_LVM_LV=VolGroup/lv_root  KEYBOARDTYPE=pc KEYTABLE=us rd_NO_DM rhgb quiet",
		"rd_LVM_LV=VolGroup/lv_root  KEYBOARDTYPE=pc KEYTABLE=us rd_NO_DM console=ttyS0,115200n8 earlyprintk=ttyS0,115200 rootdelay=300 numa=off")
	if string(got) != want {
		t.Errorf("grub.conf after fix:\n%s\nwant:\n%s", got, want)
	}
	if link, err := os.Readlink(filepath.Join(target.Name, "boot/grub/menu.lst")); err != nil || link != "./grub.conf" {
		t.Errorf("menu.lst is no longer the link to grub.conf: %q %v", link, err)
	}
	fresh, _ := OpenDir(target.Name)
	for _, id := range ids {
		if o := outcome(t, fresh, id); o.Status != Passed {
			t.Errorf("%s after fix: %s %+v", id, o.Status, o.Findings)
		}
	}
	again, err := PlanFix(fresh, Catalog(), nil, ids)
	if err != nil || len(again.Changes) != 0 {
		t.Fatalf("second fix: %v %+v", err, again.Changes)
	}
}
