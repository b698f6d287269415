package lint

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// tree builds a guest directory from files (path -> content; content
// "->target" makes a symlink) and returns it as a check target.
func tree(t *testing.T, files map[string]string) *Target {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	target, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func ruleByID(id string) *Rule {
	for _, r := range Catalog() {
		if r.ID == id {
			return r
		}
	}
	panic("no rule " + id)
}

// outcome runs one rule.
func outcome(t *testing.T, target *Target, id string) Outcome {
	t.Helper()
	return Run(target, []*Rule{ruleByID(id)}, nil).Outcomes[0]
}

// systemd marks a tree as booting with systemd.
// systemd is a guest booted by systemd with the units of the agents and
// sshd installed (enabled only where a test links them into a .wants
// directory: a link to a unit file that is not there starts nothing).
var systemd = map[string]string{"usr/lib/systemd/systemd": "", "sbin/init": "->/usr/lib/systemd/systemd",
	"usr/lib/systemd/system/walinuxagent.service": "[Unit]\n", "usr/lib/systemd/system/cloud-init.service": "[Unit]\n",
	"usr/lib/systemd/system/vhdprep-agent.service": "[Unit]\n", "usr/lib/systemd/system/ssh.service": "[Unit]\n"}

func with(base map[string]string, more map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

func TestTreeRules(t *testing.T) {
	goodGrub := "GRUB_CMDLINE_LINUX=\"console=tty1 console=ttyS0,115200n8 earlyprintk=ttyS0,115200 rootdelay=300\"\n"
	cases := []struct {
		rule  string
		files map[string]string
		want  Status
		msg   string // part of the first finding's message
	}{
		{"KRN001", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"}, Failed, "no console=ttyS0"},
		{"KRN001", map[string]string{"etc/default/grub": goodGrub}, Passed, ""},
		{"KRN001", map[string]string{"etc/hostname": "x"}, Skipped, ""},
		{"KRN001", map[string]string{"boot/loader/entries/a.conf": "title A\noptions root=UUID=x console=ttyS0\n", "boot/grub/grub.cfg": "menuentry 'B' {\n linux /vmlinuz root=UUID=x quiet\n}\n"}, Failed, "entry \"B\""},
		{"KRN002", map[string]string{"etc/default/grub": goodGrub}, Passed, ""},
		{"KRN002", map[string]string{"etc/kernel/cmdline": "root=UUID=x console=ttyS0\n"}, Failed, "earlyprintk"},
		{"KRN003", map[string]string{"etc/default/grub": goodGrub}, Passed, ""},
		{"KRN003", map[string]string{"etc/kernel/cmdline": "rootdelay=30\n"}, Failed, "rootdelay=300"},
		{"KRN004", map[string]string{"etc/default/grub": "GRUB_CMDLINE_LINUX=\"rhgb quiet\"\n"}, Failed, "rhgb, quiet are set"},
		{"KRN004", map[string]string{"etc/default/grub": goodGrub}, Passed, ""},
		{"KRN005", map[string]string{"etc/kernel/cmdline": "crashkernel=auto\n"}, Failed, "128 MB"},
		{"KRN005", map[string]string{"etc/kernel/cmdline": "crashkernel=256M\n"}, Passed, ""},
		{"KRN007", map[string]string{"etc/kernel/cmdline": "reserve=0x1f0,0x8\n"}, Failed, "CD-ROM"},
		{"KRN007", map[string]string{"etc/kernel/cmdline": "root=UUID=x\n"}, Passed, ""},
		{"KRN009", map[string]string{"etc/kernel/cmdline": "root=/dev/sda2 ro\n"}, Failed, "root=/dev/sda2"},
		{"KRN009", map[string]string{"etc/kernel/cmdline": "root=/dev/mapper/rhel-root ro\n"}, Passed, ""},
		{"SWP001", map[string]string{"etc/fstab": "UUID=a / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n"}, Failed, "/swapfile"},
		{"SWP001", map[string]string{"etc/fstab": "UUID=a / ext4 defaults 0 1\n#/swapfile none swap sw 0 0\n"}, Passed, ""},
		{"SWP001", map[string]string{"etc/hostname": "x"}, Skipped, ""},
		{"FST001", map[string]string{"etc/fstab": "/dev/sda1 / ext4 defaults 0 1\n"}, Failed, "device name /dev/sda1"},
		{"FST001", map[string]string{"etc/fstab": "UUID=a / ext4 defaults 0 1\n"}, Passed, ""},
		{"SEC001", map[string]string{"etc/shadow": "root:$6$x:1::\nbob:$6$salt$hash:1::\n"}, Failed, "bob has a usable password"},
		{"SEC001", map[string]string{"etc/passwd": "bob:x:1000:1000::/home/bob:/bin/bash\n", "home/bob/.ssh/authorized_keys": "ssh-ed25519 AAAA bob\n"}, Failed, "authorized_keys"},
		{"SEC001", map[string]string{"etc/shadow": "root:$6$x:1::\nbob:!:1::\nsvc:*:1::\n", "etc/passwd": "svc:x:999:999::/var/svc:/usr/sbin/nologin\n", "var/svc/.ssh/authorized_keys": "key"}, Passed, ""},
		{"SEC002", map[string]string{"root/.bash_history": "ls\n"}, Failed, "shell history"},
		{"SEC002", map[string]string{"root/.bash_history": ""}, Passed, ""},
		{"SEC003", map[string]string{"etc/ssh/ssh_host_ed25519_key": "k", "etc/ssh/ssh_host_ed25519_key.pub": "k"}, Failed, "ssh_host_ed25519_key"},
		{"SEC003", map[string]string{"etc/ssh/sshd_config": ""}, Passed, ""},
		{"SEC004", map[string]string{"etc/machine-id": "0123456789abcdef0123456789abcdef\n"}, Failed, "machine-id"},
		{"SEC004", map[string]string{"etc/machine-id": ""}, Passed, ""},
		{"SEC005", map[string]string{"etc/sudoers": "Defaults   targetpw\nALL     ALL=(ALL) ALL\n"}, Failed, "targetpw"},
		{"SEC005", map[string]string{"etc/sudoers": "# Defaults targetpw\n%wheel ALL=(ALL) ALL\n"}, Passed, ""},
		// sudoers as sudo reads it: SUSE's stock lines with their comments,
		// the last plain Defaults winning, lists, scoped Defaults, drop-ins
		// only through an includedir and without '.' or '~' in their
		// names, openSUSE's /usr/etc/sudoers.
		{"SEC005", map[string]string{"etc/sudoers": "Defaults targetpw   # ask for the password of the target user i.e. root\nALL   ALL=(ALL) ALL   # WARNING! Only use this together with 'Defaults targetpw'!\n"}, Failed, "targetpw"},
		{"SEC005", map[string]string{"etc/sudoers": "Defaults targetpw\n#includedir /etc/sudoers.d\n", "etc/sudoers.d/90-azure": "Defaults !targetpw\n"}, Passed, ""},
		{"SEC005", map[string]string{"etc/sudoers": "Defaults env_reset, targetpw, !insults\n"}, Failed, "targetpw"},
		{"SEC005", map[string]string{"etc/sudoers": "Defaults>root targetpw\n"}, Failed, "targetpw"},
		{"SEC005", map[string]string{"etc/sudoers": "Defaults targetpw\nDefaults !targetpw, targetpw\n"}, Failed, "targetpw"},
		{"SEC005", map[string]string{"etc/sudoers": "Defaults targetpw\nDefaults targetpw, !targetpw\n"}, Passed, ""},
		{"SEC005", map[string]string{"etc/sudoers": "root ALL=(ALL) ALL\n", "etc/sudoers.d/50-x": "Defaults targetpw\n"}, Passed, ""},
		{"SEC005", map[string]string{"etc/sudoers": "@includedir /etc/sudoers.d\n", "etc/sudoers.d/50-x.rpmsave": "Defaults targetpw\n", "etc/sudoers.d/50-y~": "Defaults targetpw\n"}, Passed, ""},
		{"SEC005", map[string]string{"etc/sudoers": "@includedir sudoers.d\n", "etc/sudoers.d/50-x": "Defaults \\\n  targetpw\n"}, Failed, "targetpw"},
		{"SEC005", map[string]string{"usr/etc/sudoers": "Defaults targetpw\n"}, Failed, "targetpw"},
		{"SEC006", map[string]string{"var/lib/waagent/provisioned": ""}, Failed, "provisioning state"},
		{"SEC006", map[string]string{"var/lib/waagent/waagent.log": ""}, Passed, ""},
		{"NET003", map[string]string{"etc/udev/rules.d/70-persistent-net.rules": "SUBSYSTEM==\"net\""}, Failed, "persistent network"},
		{"NET003", map[string]string{"etc/udev/rules.d/99-local.rules": ""}, Passed, ""},
		{"OS001", map[string]string{"usr/bin/true": "\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00"}, Failed, "i386"},
		{"OS001", map[string]string{"usr/bin/true": "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"}, Passed, ""},
		{"OS001", map[string]string{"etc/hostname": "x"}, Skipped, ""},
		{"SSH001", with(systemd, map[string]string{"etc/hostname": "x"}), Failed, "no SSH server"},
		{"SSH001", with(systemd, map[string]string{"usr/sbin/sshd": ""}), Failed, "not enabled"},
		{"SSH001", with(systemd, map[string]string{"usr/sbin/sshd": "", "etc/systemd/system/multi-user.target.wants/ssh.service": "->/usr/lib/systemd/system/ssh.service"}), Passed, ""},
		{"SSH002", map[string]string{"usr/sbin/sshd": "", "etc/ssh/sshd_config": "Port 22\n"}, Failed, "not set"},
		{"SSH002", map[string]string{"usr/sbin/sshd": "", "etc/ssh/sshd_config": "ClientAliveInterval 600\n"}, Failed, "outside 30-235"},
		{"SSH002", map[string]string{"usr/sbin/sshd": "", "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nClientAliveInterval 600\n", "etc/ssh/sshd_config.d/50-azure.conf": "ClientAliveInterval 180\n"}, Passed, ""},
		// sshd_config as sshd reads it: drop-ins only where an Include
		// reads them, and where it stands; '=' and quotes; relative
		// Includes; a Match in a drop-in ends only that file.
		{"SSH002", map[string]string{"usr/sbin/sshd": "", "etc/ssh/sshd_config": "Port 22\n", "etc/ssh/sshd_config.d/50-azure.conf": "ClientAliveInterval 180\n"}, Failed, "not set"},
		{"SSH002", map[string]string{"usr/sbin/sshd": "", "etc/ssh/sshd_config": "ClientAliveInterval 0\nInclude /etc/ssh/sshd_config.d/*.conf\n", "etc/ssh/sshd_config.d/50-azure.conf": "ClientAliveInterval 180\n"}, Failed, "ClientAliveInterval 0 is outside"},
		{"SSH002", map[string]string{"usr/sbin/sshd": "", "etc/ssh/sshd_config": "ClientAliveInterval=120\n"}, Passed, ""},
		{"SSH002", map[string]string{"usr/sbin/sshd": "", "etc/ssh/sshd_config": "clientaliveinterval \"120\" # builder\n"}, Passed, ""},
		{"SSH002", map[string]string{"usr/sbin/sshd": "", "etc/ssh/sshd_config": "Include sshd_config.d/*.conf\n", "etc/ssh/sshd_config.d/50-azure.conf": "ClientAliveInterval 180\n"}, Passed, ""},
		{"SSH002", map[string]string{"usr/sbin/sshd": "", "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nClientAliveInterval 120\n", "etc/ssh/sshd_config.d/10-match.conf": "Match User backup\nClientAliveInterval 0\n"}, Passed, ""},
		{"SSH002", map[string]string{"usr/sbin/sshd": "", "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config /etc/ssh/sshd_config /etc/ssh/sshd_config\nClientAliveInterval 120\n"}, Passed, ""},
		{"AGT001", with(systemd, map[string]string{"usr/sbin/waagent": ""}), Failed, "no provisioning agent"},
		{"AGT001", with(systemd, map[string]string{"etc/systemd/system/multi-user.target.wants/walinuxagent.service": "->/lib/systemd/system/walinuxagent.service"}), Passed, ""},
		{"AGT001", with(systemd, map[string]string{"etc/systemd/system/multi-user.target.wants/vhdprep-agent.service": "->/usr/lib/systemd/system/vhdprep-agent.service"}), Passed, ""},
		// apt remove (not purge) takes the unit file and leaves the link.
		{"AGT001", map[string]string{"usr/lib/systemd/systemd": "", "sbin/init": "->/usr/lib/systemd/systemd", "etc/systemd/system/multi-user.target.wants/walinuxagent.service": "->/lib/systemd/system/walinuxagent.service"}, Failed, "no provisioning agent"},
		{"AGT001", map[string]string{"etc/hostname": "x"}, Skipped, ""},
		{"AGT001", with(systemd, map[string]string{"etc/systemd/system/multi-user.target.wants/walinuxagent.service": "->x", "etc/systemd/system/walinuxagent.service": "->/dev/null"}), Failed, "no provisioning agent"},
		{"AGT001", with(systemd, map[string]string{"etc/systemd/system/cloud-init.target.wants/cloud-init.service": "->x", "etc/cloud/cloud-init.disabled": ""}), Failed, "no provisioning agent"},
		{"SWP002", map[string]string{"etc/waagent.conf": "ResourceDisk.Format=y\nResourceDisk.EnableSwap=n\n"}, Passed, ""}, // never had swap, asks for none
		{"SWP002", map[string]string{"etc/waagent.conf": "ResourceDisk.Format=y\nResourceDisk.EnableSwap=y\nResourceDisk.SwapSizeMB=2048\n"}, Passed, ""},
		{"SWP002", map[string]string{"etc/cloud/cloud.cfg": "datasource_list: [Azure]\n", "etc/cloud/cloud.cfg.d/10-swap.cfg": "swap:\n  filename: /mnt/swapfile\n  size: 2G\n"}, Passed, ""},
		{"SWP003", map[string]string{"etc/waagent.conf": "Provisioning.Agent=cloud-init\nResourceDisk.Format=y\n"}, Failed, "ResourceDisk.Format=n"},
		{"SWP003", map[string]string{"etc/waagent.conf": "Provisioning.Agent=cloud-init\nResourceDisk.Format=n\n"}, Passed, ""},
		// As WALinuxAgent reads its file: y in any case, quotes dropped, a
		// value ending at #.
		{"SWP003", map[string]string{"etc/waagent.conf": "Provisioning.Agent=cloud-init\nResourceDisk.Format=\"Y\"   # the agent formats it\n"}, Failed, "ResourceDisk.Format=n"},
		{"AGT002", map[string]string{"etc/waagent.conf": "AutoUpdate.Enabled=N # pinned\n", "usr/lib/python3/dist-packages/azurelinuxagent/common/version.py": "AGENT_VERSION = '2.2.45'\n"}, Failed, "2.2.45"},
		{"AGT002", map[string]string{"etc/waagent.conf": "AutoUpdate.Enabled=n\n", "usr/lib/python3/dist-packages/azurelinuxagent/common/version.py": "AGENT_VERSION = '2.2.45'\n"}, Failed, "2.2.45"},
		{"AGT002", map[string]string{"etc/waagent.conf": "AutoUpdate.Enabled=n\n", "usr/lib/python3/dist-packages/azurelinuxagent/common/version.py": "AGENT_VERSION = '2.9.1.1'\n"}, Passed, ""},
		{"AGT002", map[string]string{"etc/waagent.conf": "AutoUpdate.Enabled=y\n"}, Passed, ""},
		{"AGT004", map[string]string{"usr/sbin/waagent": "", "usr/sbin/NetworkManager": ""}, Failed, "NetworkManager"},
		{"AGT004", map[string]string{"usr/sbin/waagent": ""}, Passed, ""},
		{"AGT005", map[string]string{"usr/bin/cloud-init": "", "etc/cloud/cloud.cfg": "datasource_list: [Azure]\n", "etc/cloud/cloud.cfg.d/99-x.cfg": "datasource_list: [NoCloud, None]\n"}, Failed, "does not include Azure"},
		{"AGT005", map[string]string{"usr/bin/cloud-init": "", "etc/cloud/cloud.cfg.d/90-azure.cfg": "datasource_list: [ Azure ]\n"}, Passed, ""},
		{"AGT006", with(systemd, map[string]string{"etc/systemd/system/multi-user.target.wants/walinuxagent.service": "->x", "etc/systemd/system/cloud-init.target.wants/cloud-init.service": "->x", "etc/waagent.conf": "Provisioning.Agent=auto\n"}), Failed, "WALinuxAgent, cloud-init"},
		{"AGT006", with(systemd, map[string]string{"etc/systemd/system/multi-user.target.wants/walinuxagent.service": "->x", "etc/systemd/system/cloud-init.target.wants/cloud-init.service": "->x", "etc/waagent.conf": "Provisioning.Agent=cloud-init\n"}), Passed, ""},
		{"AGT006", with(systemd, map[string]string{"etc/systemd/system/multi-user.target.wants/walinuxagent.service": "->x", "etc/systemd/system/walinuxagent.service": "->/dev/null", "etc/systemd/system/multi-user.target.wants/vhdprep-agent.service": "->x"}), Passed, ""},
		{"DRV004", map[string]string{"boot/vmlinuz-6.1": "", "boot/config-6.1": "CONFIG_UDF_FS=m\n", "etc/modprobe.d/cis.conf": "install udf /bin/true\n"}, Failed, "modprobe.d disables udf"},
		{"DRV004", map[string]string{"boot/vmlinuz-6.1": "", "boot/config-6.1": "CONFIG_EXT4_FS=y\n"}, Failed, "no udf support"},
		{"DRV004", map[string]string{"boot/vmlinuz-6.1": "", "usr/lib/modules/6.1/kernel/fs/udf/udf.ko.xz": ""}, Passed, ""},
		{"DRV005", map[string]string{"boot/vmlinuz-6.1": "", "usr/lib/modules/6.1/modules.builtin": "kernel/fs/fat/vfat.ko\n"}, Passed, ""},
		{"DRV005", map[string]string{"etc/modprobe.d/b.conf": "blacklist vfat\n"}, Failed, "disables vfat"},
		{"DRV005", map[string]string{"etc/hostname": "x"}, Skipped, ""},
		{"KRN006", map[string]string{"boot/vmlinuz-2.6.32-431.el6.x86_64": "", "etc/kernel/cmdline": "ro\n"}, Failed, "needs numa=off"},
		{"KRN006", map[string]string{"boot/vmlinuz-2.6.32-431.el6.x86_64": "", "etc/kernel/cmdline": "ro numa=off\n"}, Passed, ""},
		{"KRN006", map[string]string{"boot/vmlinuz-2.6.32-754.el6.x86_64": "", "etc/kernel/cmdline": "ro\n"}, Passed, ""},
		{"KRN006", map[string]string{"boot/vmlinuz-6.1.0-13-amd64": "", "etc/kernel/cmdline": "ro\n"}, Passed, ""},
		{"KRN010", map[string]string{"boot/vmlinuz-2.6.32-279.el6.x86_64": ""}, Failed, "LIS"},
		{"KRN010", map[string]string{"boot/vmlinuz-3.2.0-custom": ""}, Failed, "older than 3.8"},
		{"KRN010", map[string]string{"boot/vmlinuz-2.6.32-358.el6.x86_64": "", "boot/vmlinuz-5.15.0-1051-azure": ""}, Passed, ""},
		{"DRV007", map[string]string{"boot/vmlinuz-6.1": "", "boot/config-6.1": "CONFIG_WATCHDOG=y\nCONFIG_CIFS=m\n"}, Passed, ""},
		{"DRV007", map[string]string{"boot/vmlinuz-6.1": "", "boot/config-6.1": "CONFIG_WATCHDOG=y\n# CONFIG_CIFS is not set\n"}, Failed, "CONFIG_CIFS"},
		{"DRV007", map[string]string{"boot/vmlinuz-6.1": ""}, Skipped, ""},
		{"NET001", map[string]string{"etc/netplan/50-cloud-init.yaml": "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n"}, Passed, ""},
		{"NET001", map[string]string{"etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\nBOOTPROTO=dhcp\n"}, Passed, ""},
		{"NET001", map[string]string{"etc/network/interfaces": "auto eth0\niface eth0 inet static\n  address 10.0.0.4\n"}, Failed, "nothing configures"},
		{"NET002", map[string]string{"etc/iptables/rules.v4": "*filter\n-A OUTPUT -d 168.63.129.16/32 -j DROP\nCOMMIT\n"}, Failed, "drops new connections to the wire server"},
		{"NET002", map[string]string{"etc/iptables/rules.v4": "*filter\n-A OUTPUT -d 168.63.129.16/32 -p tcp --dport 53 -j ACCEPT\nCOMMIT\n"}, Passed, ""},
		{"NET004", map[string]string{"etc/dhcp/dhclient.conf": "send host-name = gethostname();\n"}, Failed, "default of 60 s"},
		{"NET004", map[string]string{"etc/dhcp/dhclient.conf": "timeout 300;\n"}, Passed, ""},
		{"NET004", map[string]string{"etc/hostname": "x"}, Skipped, ""},
		{"AGT003", map[string]string{"usr/sbin/waagent": "", "usr/bin/python3": ""}, Failed, "/usr/bin/python is missing"},
		{"AGT003", map[string]string{"usr/sbin/waagent": "", "usr/bin/python3": "", "usr/bin/python": "->python3"}, Passed, ""},
		{"AGT003", map[string]string{"etc/hostname": "x"}, Passed, ""},
	}
	for _, c := range cases {
		o := outcome(t, tree(t, c.files), c.rule)
		if o.Status != c.want {
			t.Errorf("%s on %v: %s (%v %s), want %s", c.rule, keys(c.files), o.Status, o.Findings, o.Reason, c.want)
			continue
		}
		if c.msg != "" && !strings.Contains(o.Findings[0].Message, c.msg) {
			t.Errorf("%s: finding %q lacks %q", c.rule, o.Findings[0].Message, c.msg)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The disk rules on real disks.
func TestDiskRules(t *testing.T) {
	open := func(recipe string) *Target {
		target, err := OpenImage(testimage.Path(t, recipe))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { target.Close() })
		return target
	}
	blank := filepath.Join(t.TempDir(), "blank.raw")
	os.WriteFile(blank, make([]byte, 32<<20), 0o644)
	blankTarget, err := OpenImage(blank)
	if err != nil {
		t.Fatal(err)
	}
	defer blankTarget.Close()
	grown := filepath.Join(t.TempDir(), "grown.raw")
	testimage.RequireTools(t, "sfdisk")
	os.WriteFile(grown, nil, 0o644)
	os.Truncate(grown, 40<<20)
	sfdisk := exec.Command("sfdisk", "-q", grown)
	sfdisk.Stdin = strings.NewReader("label: gpt\n,10M,L\n")
	if out, err := sfdisk.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	os.Truncate(grown, 64<<20) // grown the way truncate or qemu-img resize do it
	grownTarget, err := OpenImage(grown)
	if err != nil {
		t.Fatal(err)
	}
	defer grownTarget.Close()
	for _, c := range []struct {
		target *Target
		rule   string
		want   Status
	}{
		{grownTarget, "DSK001", Failed},
		{open("disk-debian-mbr"), "DSK001", Passed},
		{open("disk-debian-mbr"), "DSK002", Passed},
		{open("disk-debian-mbr"), "DSK003", Passed},
		{open("disk-debian-mbr"), "DSK004", Passed},
		{open("disk-debian-mbr"), "DSK005", Passed},
		{open("disk-rhel-lvm"), "DSK005", Passed},
		{open("disk-mbr-logical"), "DSK002", Failed},
		{open("disk-mbr-logical"), "SWP001", Failed},
		{open("disk-rhel-lvm"), "DSK002", Failed},
		{open("disk-rhel-lvm"), "DSK003", Failed},
		{open("disk-rhel-lvm"), "DSK004", Passed},
		{open("disk-rhel-lvm"), "KRN004", Failed},
		{open("disk-rhel-lvm"), "KRN005", Failed},
		{blankTarget, "DSK004", Failed},
		{blankTarget, "KRN001", Skipped},
		{tree(t, map[string]string{"etc/hostname": "x"}), "DSK001", Skipped},
	} {
		if o := outcome(t, c.target, c.rule); o.Status != c.want {
			t.Errorf("%s on %s: %s (%v %s), want %s", c.rule, c.target.Name, o.Status, o.Findings, o.Reason, c.want)
		}
	}
}

// Two partitions each holding an OS root: DSK005 says so.
func TestTwoRoots(t *testing.T) {
	testimage.RequireTools(t, "sfdisk", "mkfs.ext4")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc/os-release"), []byte("ID=debian\n"), 0o644)
	disk := filepath.Join(dir, "disk.raw")
	os.WriteFile(disk, nil, 0o644)
	os.Truncate(disk, 40<<20)
	run := func(stdin, name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", name, err, out)
		}
	}
	run("label: dos\n1MiB,16MiB,L\n,16MiB,L\n", "sfdisk", "-q", disk)
	for _, off := range []string{"1", "17"} {
		fs := filepath.Join(dir, "fs"+off)
		os.WriteFile(fs, nil, 0o644)
		os.Truncate(fs, 16<<20)
		run("", "mkfs.ext4", "-q", "-F", "-d", tree, fs)
		run("", "dd", "if="+fs, "of="+disk, "bs=1M", "seek="+off, "conv=notrunc", "status=none")
	}
	target, err := OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if o := outcome(t, target, "DSK005"); o.Status != Failed || !strings.Contains(o.Findings[0].Message, "p1, p2") {
		t.Fatalf("%+v", o)
	}
}
