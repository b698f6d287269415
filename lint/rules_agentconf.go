package lint

import (
	"fmt"

	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/vhdprep/vhdprep/guest/agents"
	"github.com/vhdprep/vhdprep/rootfs"
)

// waagentConf reads /etc/waagent.conf as WALinuxAgent does; nil when absent.
func waagentConf(root rootfs.FS) (map[string]string, map[string]int, error) {
	return agents.Values(root, agents.WAAgent)
}

// waagentSwitch is a y/n setting of waagent.conf as WALinuxAgent reads it.
func waagentSwitch(conf map[string]string, key string, def bool) bool {
	return agents.Switch(agents.WAAgent, conf, key, def)
}

// waagentProvisions tells whether WALinuxAgent's config lets it provision
// (Provisioning.Agent auto/waagent in 2.2.x+, Provisioning.Enabled before).
func waagentProvisions(conf map[string]string) bool {
	if a, ok := conf["Provisioning.Agent"]; ok {
		return a == "auto" || a == "waagent"
	}
	return waagentSwitch(conf, "Provisioning.Enabled", true)
}

// checkOneResourceDiskOwner: one agent formats the resource disk. Not
// WALinuxAgent, running, while cloud-init provisions (and formats it too);
// and not none, where the configuration asked an agent that no longer runs
// at boot (one agent inject replaced) to. The file of such an agent
// decides nothing.
func checkOneResourceDiskOwner(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	intents, err := diskIntents(root)
	if err != nil {
		return nil, err
	}
	running, err := runningAgents(root, intents)
	if err != nil {
		return nil, err
	}
	if f := lostDiskSetup(root, intents, running); f != nil {
		return []Finding{*f}, nil
	}
	conf, lines, err := waagentConf(root)
	if err != nil || conf == nil {
		return nil, err
	}
	if contains(running, agentWAAgent) && waagentSwitch(conf, agents.KeyFormat, false) && conf["Provisioning.Agent"] == "cloud-init" {
		return []Finding{{Message: "cloud-init provisions but WALinuxAgent also formats the resource disk; set ResourceDisk.Format=n and let cloud-init do it",
			Location: Location{File: "/" + waagentConfPath, Line: lines[agents.KeyFormat]}}}, nil
	}
	return nil, nil
}

// lostDiskSetup finds a resource disk the configuration asks to format
// and mount for an agent that does not run at boot (one agent inject
// replaced) while no agent that runs formats it: the finding says what to
// carry over where.
func lostDiskSetup(root rootfs.FS, intents []agents.DiskIntent, running []string) *Finding {
	if contains(running, agentCloudInit) {
		return nil // cloud-init formats it on Azure by default
	}
	var lost *agents.DiskIntent
	for i, d := range intents {
		switch {
		case contains(running, d.Agent) && d.Format:
			return nil // a running agent formats it
		case d.Format && !contains(running, d.Agent) && lost == nil:
			lost = &intents[i]
		}
	}
	owner, file := diskOwner(root, running)
	if lost == nil || owner == "" {
		return nil
	}
	set := agents.KeyFormat + "=y"
	if lost.Mount != "" {
		set += " and " + agents.KeyMountPoint + "=" + lost.Mount
	}
	return &Finding{Message: fmt.Sprintf("the resource disk is to be formatted and mounted by %s (%s), which does not run at boot, and %s, which does, does not format it", lost.Agent, lost.File, owner),
		Location: Location{File: lost.File}, Fix: fmt.Sprintf("set %s in %s", set, file), Fixable: true}
}

// carryDiskSetup repairs what lostDiskSetup finds: the running agent that
// owns the resource disk is told to format it, where the lost setting
// mounted it. Swap is SWP002's to carry.
func carryDiskSetup(root rootfs.FS, o *Overlay, intents []agents.DiskIntent, running []string) error {
	_, file := diskOwner(root, running)
	for _, d := range intents {
		if !d.Format || contains(running, d.Agent) {
			continue
		}
		name := strings.TrimPrefix(file, "/")
		if err := setKey(o, name, agents.KeyFormat, "y"); err != nil {
			return err
		}
		if d.Mount != "" {
			return setKey(o, name, agents.KeyMountPoint, d.Mount)
		}
		return nil
	}
	return nil
}

// minWAAgent is the oldest WALinuxAgent the certification tests accept
// without auto-update.
var minWAAgent = []int{2, 2, 53, 1}

var agentVersionRE = regexp.MustCompile(`AGENT_VERSION\s*=\s*['"]([0-9.]+)['"]`)

// waagentVersion finds the installed WALinuxAgent's version in its Python
// package; "" when it cannot be found.
func waagentVersion(root rootfs.FS) string {
	for _, lib := range []string{"usr/lib", "usr/lib64", "usr/local/lib"} {
		ents, _ := root.ReadDir(lib)
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), "python") {
				continue
			}
			for _, pkgs := range []string{"dist-packages", "site-packages"} {
				b, _ := readFile(root, path.Join(lib, e.Name(), pkgs, "azurelinuxagent/common/version.py"))
				if m := agentVersionRE.FindSubmatch(b); m != nil {
					return string(m[1])
				}
			}
		}
	}
	return ""
}

func versionLess(v string, min []int) bool {
	parts := strings.Split(v, ".")
	for i, m := range min {
		n := 0
		if i < len(parts) {
			n, _ = strconv.Atoi(parts[i])
		}
		if n != m {
			return n < m
		}
	}
	return false
}

func checkWAAgentCurrent(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	conf, lines, err := waagentConf(root)
	if err != nil {
		return nil, err
	}
	if conf == nil && !exists(root, waagentProgram) {
		return nil, nil // no WALinuxAgent
	}
	if waagentSwitch(conf, "AutoUpdate.Enabled", true) {
		return nil, nil // it updates itself
	}
	v := waagentVersion(root)
	if v == "" {
		return nil, Skip("WALinuxAgent's version could not be found, and AutoUpdate.Enabled=n")
	}
	if versionLess(v, minWAAgent) {
		return []Finding{{Message: fmt.Sprintf("WALinuxAgent %s is older than 2.2.53.1 and AutoUpdate.Enabled=n", v),
			Location: Location{File: "/etc/waagent.conf", Line: lines["AutoUpdate.Enabled"]}, Fix: "set AutoUpdate.Enabled=y", Fixable: true}}, nil
	}
	return nil, nil
}

func checkAgentNetworkManager(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	if exists(root, waagentProgram) && (exists(root, "usr/sbin/NetworkManager") || exists(root, "sbin/NetworkManager")) {
		return []Finding{{Message: "WALinuxAgent and NetworkManager are both installed; agents older than 2.2 conflict with NetworkManager"}}, nil
	}
	return nil, nil
}

func checkCloudInitAzure(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	if !exists(root, cloudInitProgram) {
		return nil, nil
	}
	list, azure, err := cloudInitDatasources(root)
	if err != nil || azure {
		return nil, err
	}
	return []Finding{{Message: fmt.Sprintf("cloud-init's datasource_list %v does not include Azure", list), Location: Location{File: cloudInitConfDir}}}, nil
}

// cloudConfig is cloud-init's configuration (see agents.CloudConfig); one
// that does not parse is a skip.
func cloudConfig(root rootfs.FS) (map[string]any, error) {
	cfg, err := agents.CloudConfig(root)
	return cfg, skipConfigError(err)
}

// cloudInitDatasources is cloud-init's datasource_list, and whether it
// lets cloud-init choose Azure (see agents.CloudInitDatasources).
func cloudInitDatasources(root rootfs.FS) ([]any, bool, error) {
	list, azure, err := agents.CloudInitDatasources(root)
	return list, azure, skipConfigError(err)
}

func checkOneProvisioner(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	enabled, err := enabledAgents(root)
	if err != nil {
		return nil, err
	}
	conf, _, err := waagentConf(root)
	if err != nil {
		return nil, err
	}
	var provisioners []string
	for _, a := range enabled {
		if a == agentWAAgent && conf != nil && !waagentProvisions(conf) {
			continue // WALinuxAgent only handles extensions
		}
		if a == "cloud-init" && !agents.CloudInitChoosesAzure(root) {
			continue // it provisions from elsewhere, not Azure (AGT005)
		}
		provisioners = append(provisioners, a)
	}
	if len(provisioners) > 1 {
		return []Finding{{Message: "more than one agent provisions at boot: " + strings.Join(provisioners, ", ") + "; they race and one fails"}}, nil
	}
	return nil, nil
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
	wantedSwap := waagentSwitch(conf, agents.KeySwap, false)
	for _, kv := range [][2]string{{"ResourceDisk.Format", "n"}, {"ResourceDisk.EnableSwap", "n"}} {
		if err := setKey(o, "etc/waagent.conf", kv[0], kv[1]); err != nil {
			return err
		}
	}
	cfg, err := cloudConfig(root)
	if err != nil {
		return err
	}
	if wantedSwap && !agents.MentionsEphemeralSwap(cfg) {
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
