package lint

import (
	"testing"
)

// FuzzRepairs: whatever the guest's configuration files hold, planning
// every repair returns (an error at worst) and never panics, and applying
// the plan to the tree works.
func FuzzRepairs(f *testing.F) {
	f.Add("/dev/sda1 / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\n", "GRUB_CMDLINE_LINUX=\"quiet root=/dev/sda1\"\n",
		"Provisioning.Agent=cloud-init\nResourceDisk.Format=y\n", "MODULES=(ext4)\n", "timeout 60;\n", "features=\"base\"\n")
	f.Add("UUID=x /data ext4 defaults\n#\n\n", "GRUB_CMDLINE_LINUX=\"", "=\n==\nResourceDisk.SwapSizeMB=-1", "MODULES=(", "timeout", "features=\"")
	f.Add("", "GRUB_CMDLINE_LINUX_DEFAULT=quiet\nGRUB_CMDLINE_LINUX=ro\nexport GRUB_CMDLINE_LINUX=\"${GRUB_CMDLINE_LINUX} x\" # c\n", "", "", "", "")
	f.Add("", "GRUB_CMDLINE_LINUX='a \\\nb'\nGRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX\"'c'\n", "", "", "", "")
	f.Fuzz(func(t *testing.T, fstab, grub, waagent, mkinitcpio, dhclient, mkinitfs string) {
		target := tree(t, map[string]string{
			"etc/fstab":                   fstab,
			"etc/default/grub":            grub,
			"etc/kernel/cmdline":          grub,
			"etc/waagent.conf":            waagent,
			"etc/mkinitcpio.conf":         mkinitcpio,
			"etc/dhcp/dhclient.conf":      dhclient,
			"etc/mkinitfs/mkinitfs.conf":  mkinitfs,
			"etc/cloud/cloud.cfg":         "datasource_list: [Azure]\n",
			"boot/vmlinuz-2.6.32-220.el6": "",
		})
		plan, err := PlanFix(target, Catalog(), nil, nil)
		if err != nil {
			return
		}
		if err := plan.Apply(target); err != nil {
			t.Fatalf("applying the plan to a tree: %v", err)
		}
	})
}
