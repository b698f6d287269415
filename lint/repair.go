package lint

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/vhdprep/vhdprep/kernel"
)

// editLine rewrites line n (1-based) of a file in the overlay.
func editLine(o *Overlay, name string, n int, edit func(string) (string, error)) error {
	b, err := o.Read(name)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	if n < 1 || n > len(lines) {
		return fmt.Errorf("/%s has no line %d", name, n)
	}
	nl, err := edit(lines[n-1])
	if err != nil {
		return err
	}
	lines[n-1] = nl
	o.Write(name, []byte(strings.Join(lines, "\n")))
	return nil
}

// swapDisabledMark starts the fstab swap lines fix comments out.
const swapDisabledMark = "# disabled by vhdprep (SWP001: swap belongs on the resource disk): "

// repairSwapFstab comments out every swap line of fstab (nothing is
// deleted) and disables the enabled .swap units, as systemctl disable does.
func repairSwapFstab(t *Target, o *Overlay) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	units := enabledSwapUnits(root)
	for _, u := range units {
		o.Remove(u.link)
	}
	es, err := t.fstab()
	if err != nil {
		if len(units) > 0 {
			return nil
		}
		return err
	}
	for _, e := range es {
		if e.IsSwap() {
			if err := editLine(o, "etc/fstab", e.Line, func(line string) (string, error) {
				return swapDisabledMark + line, nil
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func repairPersistentNet(t *Target, o *Overlay) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	for _, p := range persistentNetRules {
		if exists(root, p) {
			o.Remove(p)
		}
	}
	return nil
}

// commentLines comments out, in a file of the overlay, the lines match
// selects, saying which rule did it.
func commentLines(o *Overlay, name, rule string, match func(string) bool) error {
	b, err := o.Read(name)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if match(l) {
			lines[i] = "# disabled by vhdprep (" + rule + "): " + l
		}
	}
	o.Write(name, []byte(strings.Join(lines, "\n")))
	return nil
}

func repairClientAlive(t *Target, o *Overlay) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	main, err := o.Read("etc/ssh/sshd_config")
	if err != nil {
		return err
	}
	// sshd takes the first value it reads: a drop-in read before the main
	// file's settings wins, and leaves the distribution's file untouched.
	if regexp.MustCompile(`(?mi)^\s*Include\s+/etc/ssh/sshd_config\.d/\*\.conf`).Match(main) {
		o.Write("etc/ssh/sshd_config.d/05-vhdprep-azure.conf", []byte("# Azure's load balancer drops idle connections after 4 minutes (SSH002).\nClientAliveInterval 180\n"))
		return nil
	}
	locs, _, err := sshdConfig(root)
	if err != nil {
		return err
	}
	if l, ok := locs["clientaliveinterval"]; ok && l.File == "/etc/ssh/sshd_config" {
		return editLine(o, "etc/ssh/sshd_config", l.Line, func(string) (string, error) { return "ClientAliveInterval 180", nil })
	}
	o.Write("etc/ssh/sshd_config", append([]byte("# Azure's load balancer drops idle connections after 4 minutes (SSH002).\nClientAliveInterval 180\n"), main...))
	return nil
}

func repairSudoers(t *Target, o *Overlay) error {
	fs, err := checkSudoers(t)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if err := editLine(o, strings.TrimPrefix(f.Location.File, "/"), f.Location.Line, func(l string) (string, error) {
			return "# disabled by vhdprep (SEC005): " + l, nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func repairAutoUpdate(t *Target, o *Overlay) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	if _, _, err := waagentConf(root); err != nil {
		return err
	}
	return setKey(o, "etc/waagent.conf", "AutoUpdate.Enabled", "y")
}

// Names for AGT005's drop-in, in order of preference: cloud.cfg.d files
// are read in name order and the last setting wins, so the drop-in must
// sort after every other (Proxmox's 99_pve.cfg sorts after the first).
var cloudInitAzureDropIns = []string{"99-vhdprep-azure.cfg", "zz-vhdprep-azure.cfg"}

func repairCloudInitAzure(t *Target, o *Overlay) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	const dir = "etc/cloud/cloud.cfg.d"
	ents, _ := root.ReadDir(dir)
	last := ""
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".cfg") && !contains(cloudInitAzureDropIns, e.Name()) && e.Name() > last {
			last = e.Name()
		}
	}
	for _, name := range cloudInitAzureDropIns {
		if name > last {
			o.Write(dir+"/"+name, []byte("# Added by vhdprep (AGT005): provision from Azure.\ndatasource_list: [ Azure ]\n"))
			return nil
		}
	}
	return fmt.Errorf("/%s/%s is read after any drop-in vhdprep could add: add Azure to the datasource_list it sets", dir, last)
}

// repairRootByID names the root by its filesystem's UUID wherever a
// command line names it by device (root=/dev/sda1 becomes root=UUID=...).
func repairRootByID(t *Target, o *Overlay) error {
	locs, err := t.cmdlineLocations()
	if err != nil {
		return err
	}
	for _, l := range locs {
		for _, dev := range l.Cmdline.Values("root") {
			if !isDeviceName(dev) {
				continue
			}
			uuid, err := uuidOfDevice(t, dev)
			if err != nil {
				return err
			}
			if err := editCmdlines(o, []kernel.Location{l}, []string{"root=UUID=" + uuid}, []string{"root=" + dev}); err != nil {
				return err
			}
		}
	}
	return nil
}

// deviceRE splits a kernel device name into its disk (the letters, or the
// namespace of NVMe controller 0) and partition number.
var deviceRE = regexp.MustCompile(`^/dev/(?:(?:sd|vd|hd|xvd)([a-z]+)|nvme0n(\d+)p)(\d+)$`)

// uuidOfDevice finds the filesystem a root= device name means: in an
// image, that partition of the first disk (sda, vda, nvme0n1), which is
// the image itself; in a tree, where no disk is known, the root fstab names
// by UUID, since root= names the root whatever the device.
func uuidOfDevice(t *Target, dev string) (string, error) {
	if t.Guest.Layout == nil {
		entries, err := t.fstab()
		if err != nil {
			return "", err
		}
		for _, e := range entries {
			if uuid, ok := strings.CutPrefix(e.Spec, "UUID="); ok && e.File == "/" {
				return uuid, nil
			}
		}
		return "", fmt.Errorf("%s: the root's UUID is known only from the disk image, and /etc/fstab does not name the root by UUID; run fix on the image, or set UUID= by hand", dev)
	}
	n, ok := partitionOfThisDisk(dev)
	if !ok {
		return "", fmt.Errorf("%s is not a partition of this image's disk; name it by UUID= by hand", dev)
	}
	for _, v := range t.Guest.Layout.Volumes {
		if v.Partition != nil && strconv.Itoa(v.Partition.Number) == n {
			if v.FS.UUID == "" {
				return "", fmt.Errorf("%s (%s) holds no filesystem with a UUID", dev, v.Name)
			}
			return v.FS.UUID, nil
		}
	}
	return "", fmt.Errorf("%s: this image has no partition %s", dev, n)
}

// partitionOfThisDisk gives the partition number a device name means on
// the guest's first disk (sda, vda, xvda, nvme0n1), which is the image.
func partitionOfThisDisk(dev string) (string, bool) {
	m := deviceRE.FindStringSubmatch(dev)
	if m == nil || (m[1] != "" && m[1] != "a") || (m[2] != "" && m[2] != "1") {
		return "", false
	}
	return m[3], true
}

var (
	fstabSpecRE    = regexp.MustCompile(`^(\s*)(\S+)(.*)$`)
	fstabOptionsRE = regexp.MustCompile(`^(\s*\S+\s+\S+\s+\S+\s+)(\S+)(.*)$`)
)

// repairFstabNames names this disk's filesystems by UUID= and gives the
// entries of other disks nofail, so a missing data disk does not stop boot.
func repairFstabNames(t *Target, o *Overlay) error {
	es, err := t.fstab()
	if err != nil {
		return err
	}
	mounted := map[string]bool{}
	for _, m := range t.Guest.Mounts {
		mounted[m.Spec] = true
	}
	b, err := o.Read("etc/fstab")
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for _, e := range es {
		// A line an earlier repair commented out (SWP001) is left alone.
		if e.Line > len(lines) {
			continue
		}
		if f := strings.Fields(lines[e.Line-1]); len(f) == 0 || f[0] != e.Spec {
			continue
		}
		if isDeviceName(e.Spec) {
			uuid, err := uuidOfDevice(t, e.Spec)
			if err != nil {
				return err
			}
			if err := editLine(o, "etc/fstab", e.Line, func(l string) (string, error) {
				m := fstabSpecRE.FindStringSubmatch(l)
				return m[1] + "UUID=" + uuid + m[3], nil
			}); err != nil {
				return err
			}
			continue
		}
		if t.Guest.Layout != nil && e.File != "/" && !e.IsSwap() && isLocalSpec(e.Spec) && !mounted[e.Spec] && !e.HasOption("nofail") {
			if err := editLine(o, "etc/fstab", e.Line, func(l string) (string, error) {
				m := fstabOptionsRE.FindStringSubmatch(l)
				if m == nil {
					return "", fmt.Errorf("/etc/fstab:%d has no options field", e.Line)
				}
				return m[1] + m[2] + ",nofail" + m[3], nil
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// repairDHClientTimeout sets dhclient's timeout to 300 s in the first
// dhclient.conf the image has.
func repairDHClientTimeout(t *Target, o *Overlay) error {
	for _, f := range []string{"etc/dhcp/dhclient.conf", "etc/dhclient.conf"} {
		b, err := o.Read(f)
		if err != nil {
			continue
		}
		if dhclientTimeout.Match(b) {
			o.Write(f, dhclientTimeout.ReplaceAll(b, []byte("timeout 300;")))
		} else {
			o.Write(f, append(b, []byte("# Added by vhdprep (NET004): DHCP can be slow on a VM's first boot.\ntimeout 300;\n")...))
		}
		return nil
	}
	return fmt.Errorf("no dhclient.conf to change")
}

// setKey sets key=value in a KEY=VALUE file (waagent.conf,
// vhdprep-agent.conf): the last line setting it, or a new line at the end.
func setKey(o *Overlay, name, key, value string) error {
	b, err := o.Read(name)
	if err != nil {
		return err
	}
	re := regexp.MustCompile(`(?m)^[ \t]*` + regexp.QuoteMeta(key) + `[ \t]*=.*$`)
	locs := re.FindAllIndex(b, -1)
	line := []byte(key + "=" + value)
	if len(locs) == 0 {
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		o.Write(name, append(append(b, line...), '\n'))
		return nil
	}
	last := locs[len(locs)-1]
	o.Write(name, append(append(append([]byte{}, b[:last[0]]...), line...), b[last[1]:]...))
	return nil
}

// Resource-disk swap: the size an agent is told to make when none is set,
// and cloud-init's way of doing it (Azure's RHEL guide).
const (
	defaultSwapMB      = "2048"
	cloudInitSwapFile  = "etc/cloud/cloud.cfg.d/99-vhdprep-swap.cfg"
	cloudInitSwapSetup = `# Added by vhdprep (SWP002): cloud-init formats the resource disk and puts swap on it.
disk_setup:
  ephemeral0:
    table_type: gpt
    layout: [66, [33, 82]]
    overwrite: true
fs_setup:
  - device: ephemeral0.1
    filesystem: ext4
  - device: ephemeral0.2
    filesystem: swap
mounts:
  - ["ephemeral0.1", "/mnt/resource"]
  - ["ephemeral0.2", "none", "swap", "sw,nofail,x-systemd.requires=cloud-init.service,x-systemd.device-timeout=2", "0", "0"]
`
)

func setResourceDiskSwap(t *Target, o *Overlay, name, size string) error {
	if n, _ := strconv.Atoi(size); n <= 0 {
		size = defaultSwapMB
	}
	for _, kv := range [][2]string{{"ResourceDisk.Format", "y"}, {"ResourceDisk.EnableSwap", "y"}, {"ResourceDisk.SwapSizeMB", size}} {
		if err := setKey(o, name, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// repairOneResourceDiskOwner leaves the resource disk to cloud-init, which
// provisions: WALinuxAgent stops formatting it, and where WALinuxAgent was
// told to put swap there, cloud-init is, unless its configuration already
// does. Swap is opt-in: fix never turns it on where nothing asked for it.
func repairOneResourceDiskOwner(t *Target, o *Overlay) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	intents, err := diskIntents(root)
	if err != nil {
		return err
	}
	running, err := runningAgents(root, intents)
	if err != nil {
		return err
	}
	if lostDiskSetup(root, intents, running) != nil {
		return carryDiskSetup(root, o, intents, running)
	}
	conf, _, err := waagentConf(root)
	if err != nil {
		return err
	}
	wantedSwap := conf[keyRDSwap] == "y"
	for _, kv := range [][2]string{{"ResourceDisk.Format", "n"}, {"ResourceDisk.EnableSwap", "n"}} {
		if err := setKey(o, "etc/waagent.conf", kv[0], kv[1]); err != nil {
			return err
		}
	}
	cfg, err := cloudConfig(root)
	if err != nil {
		return err
	}
	if wantedSwap && !mentionsEphemeralSwap(cfg) {
		o.Write(cloudInitSwapFile, []byte(cloudInitSwapSetup))
	}
	return nil
}

// repairOneProvisioner settles the usual race, WALinuxAgent and cloud-init
// both provisioning, the way Azure's guides configure cloud-init images:
// cloud-init provisions and owns the resource disk, WALinuxAgent handles
// extensions. Other pairs need an agent removed, which fix does not do.
func repairOneProvisioner(t *Target, o *Overlay) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	agents, err := enabledAgents(root)
	if err != nil {
		return err
	}
	if len(agents) != 2 || !contains(agents, "WALinuxAgent") || !contains(agents, "cloud-init") {
		return fmt.Errorf("%s all provision; keep one: disable the others' services, or run 'vhdprep agent inject --replace-waagent' to keep only vhdprep's", strings.Join(agents, ", "))
	}
	if err := setKey(o, "etc/waagent.conf", "Provisioning.Agent", "cloud-init"); err != nil {
		return err
	}
	return repairOneResourceDiskOwner(t, o)
}
