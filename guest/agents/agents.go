// Package agents reads what the provisioning agents a guest may run
// (WALinuxAgent, cloud-init, the vhdprep agent) are configured to do in
// it: their configuration files, cloud-init's datasources, what each asks
// of the resource disk. check's rules and agent inject read a guest's
// agents through it alike.
package agents

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/rootfs"
)

// The provisioning agents that may also own the resource disk, by the
// names reports give them.
const (
	WAAgent   = "WALinuxAgent"
	CloudInit = "cloud-init"
	Vhdprep   = "vhdprep agent"
)

// Their configuration: WALinuxAgent's file (inside the guest, without a
// leading slash), and where cloud-init's drop-ins are, for reports.
const (
	WAAgentConf      = "etc/waagent.conf"
	CloudInitConfDir = "/etc/cloud/cloud.cfg.d"
)

// VhdprepConf is the vhdprep agent's configuration file, as agent inject
// installs it (without a leading slash).
var VhdprepConf = strings.TrimPrefix(layout.ConfigFile, "/")

// DefaultSwapMB is the size of the swap an agent is told to make on the
// resource disk when none is set.
const DefaultSwapMB = "2048"

// ConfigError is a configuration file an agent would not read.
type ConfigError struct {
	File string // with a leading slash
	Err  error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%s is not valid YAML: %v", e.File, e.Err) }

func (e *ConfigError) Unwrap() error { return e.Err }

// InjectSupported says why vhdprep agent inject cannot install its agent
// in the guest root: it installs systemd units.
func InjectSupported(root rootfs.FS) error {
	if init := guest.DetectInit(root); init != "systemd" {
		if init == "" {
			init = "not recognized"
		}
		return fmt.Errorf("the guest's init system is %s; agent inject installs systemd units, so it supports systemd guests only", init)
	}
	return nil
}

// readFile reads a guest file; a missing file is (nil, nil).
func readFile(root rootfs.FS, name string) ([]byte, error) {
	b, err := root.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func exists(root rootfs.FS, name string) bool {
	_, err := root.Lstat(name)
	return err == nil
}

// The resource-disk keys, WALinuxAgent's and the vhdprep agent's alike.
const (
	KeyFormat     = "ResourceDisk.Format"
	KeySwap       = "ResourceDisk.EnableSwap"
	KeySwapMB     = "ResourceDisk.SwapSizeMB"
	KeyMountPoint = "ResourceDisk.MountPoint"

	KeyFilesystem   = "ResourceDisk.Filesystem"
	KeyMountOptions = "ResourceDisk.MountOptions"
)

// DiskIntent is what one agent's configuration asks of the resource disk.
type DiskIntent struct {
	Agent  string
	File   string // where it says so, with a leading slash
	Format bool   // give it a filesystem and mount it
	Swap   bool   // put swap on it
	SwapMB string // the swap's size in MiB; "" when not said
	Mount  string // the mount point; "" when not said
	// Conf is the agent's KEY=VALUE configuration (WALinuxAgent's and the
	// vhdprep agent's), nil for cloud-init.
	Conf map[string]string
}

// MakesSwap tells whether the agent itself would make the swap it is asked
// for: WALinuxAgent and the vhdprep agent make it only on a disk they
// format; cloud-init's swap settings are complete on their own.
func (d DiskIntent) MakesSwap() bool { return d.Swap && (d.Format || d.Agent == CloudInit) }

// DiskIntents reads what every agent's configuration in the guest asks of
// the resource disk, whether or not that agent runs.
func DiskIntents(root rootfs.FS) ([]DiskIntent, error) {
	var out []DiskIntent
	for _, a := range []struct{ agent, file string }{{WAAgent, WAAgentConf}, {Vhdprep, VhdprepConf}} {
		conf, _, err := Values(root, a.agent)
		if err != nil {
			return nil, err
		}
		if conf != nil {
			// Unset, WALinuxAgent leaves the disk alone and the vhdprep
			// agent formats it: their defaults.
			out = append(out, DiskIntent{Agent: a.agent, File: "/" + a.file,
				Format: Switch(a.agent, conf, KeyFormat, a.agent == Vhdprep), Swap: Switch(a.agent, conf, KeySwap, false),
				SwapMB: conf[KeySwapMB], Mount: conf[KeyMountPoint], Conf: conf})
		}
	}
	if exists(root, "etc/cloud") {
		cfg, err := CloudConfig(root)
		if err != nil {
			return nil, err
		}
		d := DiskIntent{Agent: CloudInit, File: CloudInitConfDir, Swap: MentionsEphemeralSwap(cfg), Mount: cloudInitMount(cfg), SwapMB: cloudInitSwapMB(cfg)}
		for _, k := range []string{"disk_setup", "fs_setup", "mounts"} {
			b, _ := yaml.Marshal(cfg[k])
			d.Format = d.Format || bytes.Contains(b, []byte("ephemeral0"))
		}
		if d.Format || d.Swap {
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

// The WALinuxAgent switches the vhdprep agent reads under the same names.
const (
	KeyExtensions      = "Extensions.Enabled"
	KeyMonitorHostName = "Provisioning.MonitorHostName"
)

// ReplacedSettings is what the named agents' own configuration asks that
// the vhdprep agent also does, in its keys, and the files that say so:
// agent inject carries it over when it replaces them. The resource disk
// comes from the first agent that asks something of it (WALinuxAgent's
// waagent.conf, cloud-init's disk_setup, fs_setup, mounts and swap);
// WALinuxAgent's extensions and host-name switches come along where its
// file sets them, so an image built with extensions off keeps them off.
// Nil when they ask nothing.
func ReplacedSettings(root rootfs.FS, agents []string) (map[string]string, []string, error) {
	intents, err := DiskIntents(root)
	if err != nil {
		return nil, nil, err
	}
	var keys map[string]string
	var from []string
	disk := false
	for _, d := range intents {
		if !slices.Contains(agents, d.Agent) || d.Agent == Vhdprep {
			continue
		}
		got := map[string]string{}
		if d.Agent == WAAgent {
			got = waagentSwitches(d.Conf, KeyExtensions, KeyMonitorHostName)
		}
		if !disk {
			rd := resourceDiskKeys(d)
			maps.Copy(got, rd)
			disk = len(rd) > 0
		}
		if len(got) > 0 {
			if keys == nil {
				keys = map[string]string{}
			}
			maps.Copy(keys, got)
			from = append(from, d.File)
		}
	}
	return keys, from, nil
}

// resourceDiskKeys is what a replaced agent's configuration asks of the
// resource disk, in the vhdprep agent's keys.
func resourceDiskKeys(d DiskIntent) map[string]string {
	if d.Agent == WAAgent {
		return waagentDiskKeys(d.Conf)
	}
	if !d.Format && !d.Swap {
		return nil
	}
	keys := map[string]string{KeyFormat: "y"}
	if d.Mount != "" {
		keys[KeyMountPoint] = d.Mount
	}
	if d.Swap {
		keys[KeySwap] = "y"
		keys[KeySwapMB] = d.SwapMB
		if n, _ := strconv.Atoi(d.SwapMB); n <= 0 {
			keys[KeySwapMB] = DefaultSwapMB
		}
	}
	return keys
}

// waagentSwitches are the switches among keys that waagent.conf sets
// explicitly, as y or n: WALinuxAgent reads either in any case, and
// anything else as its default, which the vhdprep agent's need not be.
func waagentSwitches(conf map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v := strings.ToLower(conf[k]); v == "y" || v == "n" {
			out[k] = v
		}
	}
	return out
}

// waagentDiskKeys are the ResourceDisk keys waagent.conf sets, as the
// vhdprep agent reads them: every one it sets explicitly, Format=n among
// them, since the vhdprep agent's defaults need not be the file's. A value
// the vhdprep agent cannot take is left to its default.
func waagentDiskKeys(conf map[string]string) map[string]string {
	keys := waagentSwitches(conf, KeyFormat, KeySwap)
	if v := conf[KeyFilesystem]; v == "ext4" || v == "ext3" || v == "ext2" || v == "xfs" {
		keys[KeyFilesystem] = v
	}
	if v, ok := conf[KeyMountPoint]; ok && path.IsAbs(v) && path.Clean(v) == v && v != "/" {
		keys[KeyMountPoint] = v
	}
	if v, ok := conf[KeyMountOptions]; ok && !strings.ContainsAny(v, " \t") {
		if v == "None" { // WALinuxAgent's word for none
			v = ""
		}
		keys[KeyMountOptions] = v
	}
	if v, ok := conf[KeySwapMB]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			keys[KeySwapMB] = v
		}
	}
	// A swap WALinuxAgent was asked for without a size gets one.
	if n, _ := strconv.Atoi(keys[KeySwapMB]); keys[KeySwap] == "y" && n <= 0 {
		keys[KeySwapMB] = DefaultSwapMB
	}
	return keys
}

// KeyValueConf reads a KEY=VALUE file (ufw's configuration): the
// values and the line that sets each; nil when there is no file.
func KeyValueConf(root rootfs.FS, name string) (map[string]string, map[string]int, error) {
	return keyValues(root, name, false)
}

// Values reads agent's KEY=VALUE configuration (WALinuxAgent's or the
// vhdprep agent's) as that agent reads it: the values and the line that
// sets each; nil when there is no file. WALinuxAgent's ConfigurationProvider
// ends a value at its first # and drops the quotes and spaces around it.
func Values(root rootfs.FS, agent string) (map[string]string, map[string]int, error) {
	if agent == WAAgent {
		return keyValues(root, WAAgentConf, true)
	}
	return keyValues(root, VhdprepConf, false)
}

func keyValues(root rootfs.FS, name string, waagent bool) (map[string]string, map[string]int, error) {
	b, err := readFile(root, name)
	if err != nil || b == nil {
		return nil, nil, err
	}
	vals, lines := map[string]string{}, map[string]int{}
	// Every line, however long: a bufio.Scanner would stop at the first
	// over 64 KiB and miss the settings after it.
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if waagent {
			v, _, _ = strings.Cut(v, "#")
			v = strings.Trim(v, "\" ")
		}
		vals[strings.TrimSpace(k)], lines[strings.TrimSpace(k)] = strings.TrimSpace(v), i+1
	}
	return vals, lines, nil
}

// Switch reads a y/n setting of agent's configuration as that agent does:
// WALinuxAgent's get_switch takes y or n in any case, the vhdprep agent
// also yes/no, true/false and 1/0. Anything else is def, its default.
func Switch(agent string, conf map[string]string, key string, def bool) bool {
	if agent == Vhdprep {
		if on, ok := layout.ParseSwitch(conf[key]); ok {
			return on
		}
		return def
	}
	switch strings.ToLower(conf[key]) {
	case "y":
		return true
	case "n":
		return false
	}
	return def
}

// CloudConfig merges /etc/cloud/cloud.cfg and cloud.cfg.d/*.cfg as
// cloud-init does (read_conf_with_confd, with its default mergers): a
// later file wins key by key, into nested mappings (datasource:, swap:),
// and a list or a scalar is replaced whole.
func CloudConfig(root rootfs.FS) (map[string]any, error) {
	files := []string{"etc/cloud/cloud.cfg"}
	ents, _ := root.ReadDir("etc/cloud/cloud.cfg.d")
	var extra []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".cfg") && !e.IsDir() {
			extra = append(extra, "etc/cloud/cloud.cfg.d/"+e.Name())
		}
	}
	sort.Strings(extra)
	merged := map[string]any{}
	for _, f := range append(files, extra...) {
		b, err := readFile(root, f)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, &ConfigError{File: "/" + f, Err: err}
		}
		mergeConfig(merged, m)
	}
	return merged, nil
}

// mergeConfig merges src into dst, src winning: mappings key by key, at
// every depth.
func mergeConfig(dst, src map[string]any) {
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			if have, ok := dst[k].(map[string]any); ok {
				mergeConfig(have, sub)
				continue
			}
		}
		dst[k] = v
	}
}

func MentionsEphemeralSwap(cfg map[string]any) bool {
	if _, ok := cfg["swap"]; ok {
		return true
	}
	b, _ := yaml.Marshal(cfg["mounts"])
	return bytes.Contains(b, []byte("swap"))
}

// CloudInitDatasources is cloud-init's datasource_list, and whether it
// lets cloud-init choose Azure (so does no list: the built-in one has it).
func CloudInitDatasources(root rootfs.FS) (list []any, azure bool, err error) {
	cfg, err := CloudConfig(root)
	if err != nil {
		return nil, false, err
	}
	list, ok := cfg["datasource_list"].([]any)
	if !ok {
		return nil, true, nil
	}
	for _, d := range list {
		if s, _ := d.(string); s == "Azure" {
			return list, true, nil
		}
	}
	return list, false, nil
}

// CloudInitChoosesAzure tells whether cloud-init, where it runs, may
// provision from Azure: its datasource list names Azure or is the built-in
// one. A configuration that does not parse counts as choosing Azure.
func CloudInitChoosesAzure(root rootfs.FS) bool {
	_, azure, err := CloudInitDatasources(root)
	return azure || err != nil
}
