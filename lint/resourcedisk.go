package lint

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vhdprep/vhdprep/rootfs"
)

// The resource-disk keys, WALinuxAgent's and the vhdprep agent's alike.
const (
	keyRDFormat = "ResourceDisk.Format"
	keyRDSwap   = "ResourceDisk.EnableSwap"
	keyRDSwapMB = "ResourceDisk.SwapSizeMB"
	keyRDMount  = "ResourceDisk.MountPoint"

	keyRDFilesystem   = "ResourceDisk.Filesystem"
	keyRDMountOptions = "ResourceDisk.MountOptions"
)

// diskIntent is what one agent's configuration asks of the resource disk.
type diskIntent struct {
	agent  string
	file   string // where it says so, with a leading slash
	format bool   // give it a filesystem and mount it
	swap   bool   // put swap on it
	swapMB string // the swap's size in MiB; "" when not said
	mount  string // the mount point; "" when not said
	// conf is the agent's KEY=VALUE configuration (WALinuxAgent's and the
	// vhdprep agent's), nil for cloud-init.
	conf map[string]string
}

// makesSwap tells whether the agent itself would make the swap it is asked
// for: WALinuxAgent and the vhdprep agent make it only on a disk they
// format; cloud-init's swap settings are complete on their own.
func (d diskIntent) makesSwap() bool { return d.swap && (d.format || d.agent == agentCloudInit) }

// diskIntents reads what every agent's configuration in the guest asks of
// the resource disk, whether or not that agent runs.
func diskIntents(root rootfs.FS) ([]diskIntent, error) {
	var out []diskIntent
	for _, a := range []struct{ agent, file string }{{agentWAAgent, waagentConfPath}, {agentVhdprep, vhdprepAgentConf}} {
		conf, _, err := keyValueConf(root, a.file)
		if err != nil {
			return nil, err
		}
		if conf != nil {
			out = append(out, diskIntent{agent: a.agent, file: "/" + a.file, format: conf[keyRDFormat] == "y", swap: conf[keyRDSwap] == "y",
				swapMB: conf[keyRDSwapMB], mount: conf[keyRDMount], conf: conf})
		}
	}
	if exists(root, "etc/cloud") {
		cfg, err := cloudConfig(root)
		if err != nil {
			return nil, err
		}
		d := diskIntent{agent: agentCloudInit, file: cloudInitConfDir, swap: mentionsEphemeralSwap(cfg), mount: cloudInitMount(cfg), swapMB: cloudInitSwapMB(cfg)}
		for _, k := range []string{"disk_setup", "fs_setup", "mounts"} {
			b, _ := yaml.Marshal(cfg[k])
			d.format = d.format || bytes.Contains(b, []byte("ephemeral0"))
		}
		if d.format || d.swap {
			out = append(out, d)
		}
	}
	return out, nil
}

// cloudInitMount is where cloud-init's mounts put the resource disk's
// filesystem (ephemeral0 or its first partition).
func cloudInitMount(cfg map[string]any) string {
	mounts, _ := cfg["mounts"].([]any)
	for _, m := range mounts {
		if e, ok := m.([]any); ok && len(e) > 1 {
			dev, _ := e[0].(string)
			at, _ := e[1].(string)
			if (dev == "ephemeral0" || dev == "ephemeral0.1") && strings.HasPrefix(at, "/") {
				return at
			}
		}
	}
	return ""
}

// cloudInitSwapMB is the size of cloud-init's swap file (swap: size:, in
// bytes, or with a K, M, G or T suffix as cc_mounts reads it), in MiB; ""
// when it is not one ("auto", say).
func cloudInitSwapMB(cfg map[string]any) string {
	swap, _ := cfg["swap"].(map[string]any)
	size := fmt.Sprint(swap["size"])
	shift := 0
	if i := strings.IndexAny(size, "KMGTkmgt"); i > 0 {
		shift = 10 * (strings.IndexByte("KMGT", size[i]&^0x20) + 1)
		size = size[:i]
	}
	n, err := strconv.ParseFloat(size, 64)
	if mb := int64(n*float64(int64(1)<<shift)) >> 20; err == nil && mb > 0 {
		return strconv.FormatInt(mb, 10)
	}
	return ""
}

// runningAgents lists the provisioning agents that start at boot; where
// the init system is not known, those whose configuration is there.
func runningAgents(root rootfs.FS, intents []diskIntent) ([]string, error) {
	agents, err := enabledAgents(root)
	if _, unknown := skipReason(err); unknown {
		agents = nil
		for _, d := range intents {
			agents = append(agents, d.agent)
		}
		if exists(root, "etc/cloud") && !contains(agents, agentCloudInit) {
			agents = append(agents, agentCloudInit)
		}
		return agents, nil
	}
	return agents, err
}

// diskOwner is the running agent that handles the resource disk, and its
// configuration file: cloud-init where it provisions, else WALinuxAgent,
// else the vhdprep agent; "" when none runs.
func diskOwner(root rootfs.FS, running []string) (agent, file string) {
	conf, _, _ := waagentConf(root)
	switch {
	case contains(running, agentCloudInit) && (!contains(running, agentWAAgent) || conf["Provisioning.Agent"] == "cloud-init"):
		return agentCloudInit, cloudInitConfDir
	case contains(running, agentWAAgent):
		return agentWAAgent, "/" + waagentConfPath
	case contains(running, agentVhdprep):
		return agentVhdprep, "/" + vhdprepAgentConf
	}
	return "", ""
}

// swapState is SWP002's reading of a guest.
type swapState struct {
	done             bool        // a running agent makes swap on the resource disk
	wanted           *diskIntent // else, configuration that asks for it
	owner, ownerFile string      // the running agent that would have to make it
	osDisk           string      // else, where the OS disk had swap; "" for none
}

func resourceDiskSwapState(t *Target) (swapState, error) {
	var st swapState
	root, err := t.root()
	if err != nil {
		return st, err
	}
	intents, err := diskIntents(root)
	if err != nil {
		return st, err
	}
	running, err := runningAgents(root, intents)
	if err != nil {
		return st, err
	}
	st.owner, st.ownerFile = diskOwner(root, running)
	for i, d := range intents {
		if contains(running, d.agent) && d.makesSwap() {
			st.done = true
			return st, nil
		}
		if d.swap && st.wanted == nil {
			st.wanted = &intents[i]
		}
	}
	st.osDisk = osDiskSwap(root)
	return st, nil
}

// osDiskSwap says where the guest has, or had before vhdprep fix disabled
// it, swap on the OS disk: fstab lines and enabled .swap units.
func osDiskSwap(root rootfs.FS) string {
	b, _ := readFile(root, "etc/fstab")
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, swapDisabledMark) {
			return fmt.Sprintf("/etc/fstab:%d, disabled by vhdprep", i+1)
		}
	}
	es, _ := rootfs.ParseFstab(b)
	for _, e := range es {
		if e.IsSwap() {
			return fmt.Sprintf("/etc/fstab:%d", e.Line)
		}
	}
	if us := enabledSwapUnits(root); len(us) > 0 {
		return "/" + us[0].link
	}
	return ""
}

// swapSettings is the advice for turning swap on in an agent's file.
func swapSettings(file string) string {
	if file == cloudInitConfDir {
		return "give cloud-init disk_setup, fs_setup and mounts for ephemeral0 with a swap partition in " + file
	}
	return fmt.Sprintf("set %s=y, %s=y and %s in %s", keyRDFormat, keyRDSwap, keyRDSwapMB, file)
}

func checkResourceDiskSwap(t *Target) ([]Finding, error) {
	st, err := resourceDiskSwapState(t)
	if err != nil || st.done {
		return nil, err
	}
	w := st.wanted
	switch {
	case w != nil && w.agent == st.owner:
		return []Finding{{Message: fmt.Sprintf("%s=y in %s, but %s makes swap only on a resource disk it formats (%s is not y)", keyRDSwap, w.file, w.agent, keyRDFormat),
			Location: Location{File: w.file}, Fix: "set " + keyRDFormat + "=y", Fixable: true}}, nil
	case w != nil && st.owner != "":
		return []Finding{{Message: fmt.Sprintf("swap on the resource disk is asked of %s in %s, which does not run at boot; %s, which does, is not told to make it", w.agent, w.file, st.owner),
			Location: Location{File: w.file}, Fix: "carry the setting over: " + swapSettings(st.ownerFile), Fixable: true}}, nil
	case w != nil:
		return []Finding{{Message: fmt.Sprintf("swap on the resource disk is asked of %s in %s, but no provisioning agent runs at boot", w.agent, w.file),
			Location: Location{File: w.file}, Fix: "vhdprep agent inject IMAGE --replace-waagent (it carries the setting over)"}}, nil
	case st.osDisk != "":
		where := cmp.Or(st.ownerFile, "/"+vhdprepAgentConf)
		return []Finding{{Message: fmt.Sprintf("the image had swap on the OS disk (%s), and no agent puts swap on the resource disk; swap there is opt-in: if VMs need it, %s", st.osDisk, swapSettings(where)),
			Location: Location{File: where}}}, nil
	}
	return nil, nil // the image never had swap, and asks for none
}

// errSwapOptIn: fix carries a swap setting over, never makes one up.
var errSwapOptIn = errors.New("swap on the resource disk is opt-in, and nothing in the image asks for it: vhdprep fix does not turn it on")

// repairResourceDiskSwap carries a swap setting over to the agent that
// handles the resource disk: cloud-init's where it provisions, else
// waagent.conf, else /etc/vhdprep-agent.conf.
func repairResourceDiskSwap(t *Target, o *Overlay) error {
	st, err := resourceDiskSwapState(t)
	if err != nil || st.done {
		return err
	}
	if st.wanted == nil {
		return fmt.Errorf("%w; to have it, %s", errSwapOptIn, swapSettings(cmp.Or(st.ownerFile, "/"+vhdprepAgentConf)))
	}
	switch st.owner {
	case agentCloudInit:
		o.Write(cloudInitSwapFile, []byte(cloudInitSwapSetup))
		return nil
	case agentWAAgent, agentVhdprep:
		return setResourceDiskSwap(t, o, strings.TrimPrefix(st.ownerFile, "/"), st.wanted.swapMB)
	}
	return fmt.Errorf("no provisioning agent runs at boot to make swap on the resource disk; run 'vhdprep agent inject --replace-waagent', which carries the setting over")
}

// ResourceDiskSettings is what the named agents' own configuration asks of
// the resource disk (WALinuxAgent's waagent.conf, cloud-init's disk_setup,
// fs_setup, mounts and swap), in the vhdprep agent's keys, and the file it
// comes from: agent inject carries it over when it replaces them. Nil when
// they ask nothing.
func ResourceDiskSettings(root rootfs.FS, agents []string) (map[string]string, string, error) {
	intents, err := diskIntents(root)
	if err != nil {
		if reason, ok := skipReason(err); ok {
			return nil, "", errors.New(reason)
		}
		return nil, "", err
	}
	for _, d := range intents {
		if !contains(agents, d.agent) || d.agent == agentVhdprep {
			continue
		}
		if d.agent == agentWAAgent {
			if keys := waagentDiskKeys(d.conf); len(keys) > 0 {
				return keys, d.file, nil
			}
			continue
		}
		if !d.format && !d.swap {
			continue
		}
		keys := map[string]string{keyRDFormat: "y"}
		if d.mount != "" {
			keys[keyRDMount] = d.mount
		}
		if d.swap {
			keys[keyRDSwap] = "y"
			keys[keyRDSwapMB] = d.swapMB
			if n, _ := strconv.Atoi(d.swapMB); n <= 0 {
				keys[keyRDSwapMB] = defaultSwapMB
			}
		}
		return keys, d.file, nil
	}
	return nil, "", nil
}

// waagentDiskKeys are the ResourceDisk keys waagent.conf sets, as the
// vhdprep agent reads them: every one it sets explicitly, Format=n among
// them, since the vhdprep agent's defaults need not be the file's. A value
// the vhdprep agent cannot take is left to its default.
func waagentDiskKeys(conf map[string]string) map[string]string {
	keys := map[string]string{}
	for _, k := range []string{keyRDFormat, keyRDSwap} {
		// WALinuxAgent's switches: y or n in any case, else the default.
		if v := strings.ToLower(conf[k]); v == "y" || v == "n" {
			keys[k] = v
		}
	}
	if v := conf[keyRDFilesystem]; v == "ext4" || v == "ext3" || v == "ext2" || v == "xfs" {
		keys[keyRDFilesystem] = v
	}
	if v, ok := conf[keyRDMount]; ok && path.IsAbs(v) && path.Clean(v) == v && v != "/" {
		keys[keyRDMount] = v
	}
	if v, ok := conf[keyRDMountOptions]; ok && !strings.ContainsAny(v, " \t") {
		if v == "None" { // WALinuxAgent's word for none
			v = ""
		}
		keys[keyRDMountOptions] = v
	}
	if v, ok := conf[keyRDSwapMB]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			keys[keyRDSwapMB] = v
		}
	}
	// A swap WALinuxAgent was asked for without a size gets one.
	if n, _ := strconv.Atoi(keys[keyRDSwapMB]); keys[keyRDSwap] == "y" && n <= 0 {
		keys[keyRDSwapMB] = defaultSwapMB
	}
	return keys
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
