package lint

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/guest"
	"github.com/vhdprep/vhdprep/rootfs"
)

// account is a line of /etc/passwd.
type account struct {
	name, home, shell string
	uid               int
}

func accounts(root rootfs.FS) ([]account, error) {
	b, err := readFile(root, "etc/passwd")
	if err != nil || b == nil {
		return nil, err
	}
	var out []account
	// Every line, however long: a bufio.Scanner would stop at the first
	// over 64 KiB and miss the accounts after it.
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Split(strings.TrimSuffix(line, "\r"), ":")
		if len(f) < 7 {
			continue
		}
		uid, _ := strconv.Atoi(f[2])
		out = append(out, account{name: f[0], uid: uid, home: strings.TrimPrefix(f[5], "/"), shell: f[6]})
	}
	return out, nil
}

func loginShell(shell string) bool {
	return shell != "" && !strings.HasSuffix(shell, "nologin") && !strings.HasSuffix(shell, "/false") && !strings.HasSuffix(shell, "/sync")
}

func checkNoCredentials(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	var fs []Finding
	shadow, err := readFile(root, "etc/shadow")
	if err != nil {
		return nil, err
	}
	// deprovision --remove-users takes the accounts of people (and their
	// homes under /home) away; root and system accounts stay, so their
	// credentials are for the user to remove.
	users, err := loginUsers(t)
	if err != nil {
		return nil, err
	}
	for i, line := range strings.Split(string(shadow), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 2 || f[0] == "root" {
			continue
		}
		if h := f[1]; h != "" && !strings.HasPrefix(h, "!") && !strings.HasPrefix(h, "*") {
			finding := Finding{Message: fmt.Sprintf("account %s has a usable password", f[0]), Location: Location{File: "/etc/shadow", Line: i + 1}}
			if !contains(users, f[0]) {
				finding.Fix = "lock it in the guest: passwd -l " + f[0]
			}
			fs = append(fs, finding)
		}
	}
	accts, err := accounts(root)
	if err != nil {
		return nil, err
	}
	for _, a := range accts {
		if !loginShell(a.shell) || a.home == "" {
			continue
		}
		keys := path.Join(a.home, ".ssh/authorized_keys")
		if b, _ := readFile(root, keys); len(bytes.TrimSpace(b)) > 0 {
			finding := Finding{Message: fmt.Sprintf("account %s has SSH authorized_keys", a.name), Location: Location{File: "/" + keys}}
			if !contains(users, a.name) || !removableHome(a.home) {
				finding.Fix = "remove /" + keys
			}
			fs = append(fs, finding)
		}
	}
	return fs, nil
}

var historyFiles = []string{".bash_history", ".zsh_history", ".sh_history", ".ash_history", ".history"}

func checkHistories(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	homes := []string{"root"}
	if ents, err := root.ReadDir("home"); err == nil {
		for _, e := range ents {
			homes = append(homes, "home/"+e.Name())
		}
	}
	var fs []Finding
	for _, h := range homes {
		for _, name := range historyFiles {
			p := h + "/" + name
			if info, err := root.Stat(p); err == nil && info.Size() > 0 {
				fs = append(fs, Finding{Message: fmt.Sprintf("shell history of %d bytes", info.Size()), Location: Location{File: "/" + p}})
			}
		}
	}
	return fs, nil
}

func checkNoHostKeys(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	ents, err := root.ReadDir("etc/ssh")
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var keys []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "ssh_host_") && strings.HasSuffix(e.Name(), "_key") {
			keys = append(keys, e.Name())
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return []Finding{{Message: "SSH host keys are in the image: " + strings.Join(keys, ", "), Location: Location{File: "/etc/ssh"}}}, nil
}

func checkMachineID(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	b, err := readFile(root, "etc/machine-id")
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) > 0 && string(bytes.TrimSpace(b)) != "uninitialized" {
		return []Finding{{Message: "/etc/machine-id is set; every VM made from the image would share it", Location: Location{File: "/etc/machine-id"}}}, nil
	}
	return nil, nil
}

// allAllRule is the rule that goes with a fresh SUSE system's targetpw:
// every user may run anything as anyone, with the target's password.
var allAllRule = regexp.MustCompile(`^ALL\s+ALL\s*=\s*\(ALL\)\s*ALL$`)

// checkSudoers: the targetpw sudo applies and the ALL ALL=(ALL) ALL rule.
// sudo applies plain Defaults in order, the last setting winning, so a
// plain targetpw counts after the last line whose own last word on it is
// !targetpw; a scoped Defaults (Defaults>root, Defaults:user) counts
// wherever it sets targetpw.
func checkSudoers(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	lines, err := sudoersLines(root)
	if err != nil {
		return nil, err
	}
	off := -1
	for i, l := range lines {
		if binding, params, _ := sudoersDefaults(l.text); binding == "" && lastTargetpw(params) == "!targetpw" {
			off = i
		}
	}
	var fs []Finding
	for i, l := range lines {
		binding, params, _ := sudoersDefaults(l.text)
		if allAllRule.MatchString(l.text) || slices.Contains(params, "targetpw") && (binding != "" || i > off) {
			fs = append(fs, Finding{Message: fmt.Sprintf("%q asks for the target's (root's) password, which Azure users do not have", l.text), Location: l.at})
		}
	}
	return fs, nil
}

// lastTargetpw is a Defaults line's last word on targetpw: "targetpw",
// "!targetpw" or "".
func lastTargetpw(params []string) string {
	for _, p := range slices.Backward(params) {
		if p == "targetpw" || p == "!targetpw" {
			return p
		}
	}
	return ""
}

// agentState is what provisioning leaves behind.
var agentState = []string{"var/lib/waagent/provisioned", "var/lib/waagent/ovf-env.xml", "var/lib/waagent/Certificates.pem", "var/lib/cloud/instance", "var/lib/cloud/instances", strings.TrimPrefix(layout.MarkerFile, "/")}

func checkAgentState(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	var fs []Finding
	for _, p := range agentState {
		if exists(root, p) {
			fs = append(fs, Finding{Message: "provisioning state left in the image", Location: Location{File: "/" + p}})
		}
	}
	return fs, nil
}

var persistentNetRules = []string{"etc/udev/rules.d/70-persistent-net.rules", "etc/udev/rules.d/75-persistent-net-generator.rules", "lib/udev/rules.d/75-persistent-net-generator.rules"}

func checkPersistentNet(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	var fs []Finding
	for _, p := range persistentNetRules {
		if exists(root, p) {
			fs = append(fs, Finding{Message: "persistent network naming rules pin the build machine's NIC", Location: Location{File: "/" + p}})
		}
	}
	return fs, nil
}

func checkUserland64(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	arch, from := guest.DetectArch(root)
	switch arch {
	case "":
		return nil, Skip("no ELF binary found to tell the architecture")
	case "x86_64", "aarch64":
		return nil, nil
	}
	return []Finding{{Message: fmt.Sprintf("the userland is %s; Azure runs x86_64 and aarch64 guests", arch), Location: Location{File: from}}}, nil
}

func sshdInstalled(root rootfs.FS) bool {
	return exists(root, "usr/sbin/sshd") || exists(root, "sbin/sshd")
}

func checkSSHServer(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	if !sshdInstalled(root) {
		return []Finding{{Message: "no SSH server (sshd) is installed", Fix: "install openssh-server"}}, nil
	}
	switch guest.DetectInit(root) {
	case "systemd":
		if !unitEnabled(root, "ssh.service", "sshd.service", "ssh.socket", "sshd.socket") {
			return []Finding{{Message: "sshd is installed but not enabled at boot", Fix: "systemctl enable ssh (or sshd) in the guest"}}, nil
		}
	case "openrc":
		if !exists(root, "etc/runlevels/default/sshd") {
			return []Finding{{Message: "sshd is installed but not in the default runlevel", Fix: "rc-update add sshd default in the guest"}}, nil
		}
	default:
		return nil, Skip("cannot tell whether sshd starts at boot: init system not recognized")
	}
	return nil, nil
}

func checkClientAlive(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	if !sshdInstalled(root) {
		return nil, Skip("no SSH server installed (see SSH001)")
	}
	locs, vals, err := sshdConfig(root)
	if err != nil {
		return nil, err
	}
	v, ok := vals["clientaliveinterval"]
	if !ok {
		return []Finding{{Message: "ClientAliveInterval is not set (0: idle sessions are dropped by Azure's load balancer after 4 minutes); set 180", Location: Location{File: "/etc/ssh/sshd_config"}}}, nil
	}
	if n, err := strconv.Atoi(v); err != nil || n < 30 || n > 235 {
		return []Finding{{Message: fmt.Sprintf("ClientAliveInterval %s is outside 30-235; set 180", v), Location: locs["clientaliveinterval"]}}, nil
	}
	return nil, nil
}

// unitDirs are where systemd finds unit files, in its order.
var unitDirs = []string{"etc/systemd/system", "usr/local/lib/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"}

// unitEnabled tells whether any of the systemd units starts at boot:
// linked into a .wants directory under /etc or the distribution's unit
// directory, not masked, and with a unit file systemd can load (a package
// removed without purging leaves its links behind, and systemd starts
// nothing for them).
func unitEnabled(root rootfs.FS, units ...string) bool {
	units = slices.DeleteFunc(slices.Clone(units), func(u string) bool { return unitMasked(root, u) || !unitFileExists(root, u) })
	if len(units) == 0 {
		return false
	}
	for _, dir := range []string{"etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"} {
		ents, err := root.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".wants") {
				continue
			}
			for _, u := range units {
				if _, err := root.Lstat(dir + "/" + e.Name() + "/" + u); err == nil {
					return true
				}
			}
		}
	}
	return false
}

// unitFileExists tells whether systemd finds a unit file for unit (its
// template's, for an instance) in its search path, following an alias.
func unitFileExists(root rootfs.FS, unit string) bool {
	names := []string{unit}
	if at := strings.IndexByte(unit, '@'); at >= 0 {
		if dot := strings.LastIndexByte(unit, '.'); dot > at {
			names = append(names, unit[:at+1]+unit[dot:])
		}
	}
	for _, dir := range unitDirs {
		for _, n := range names {
			if fi, err := root.Stat(dir + "/" + n); err == nil && !fi.IsDir() {
				return true
			}
		}
	}
	return false
}

// unitMasked tells whether a unit is masked: linked to /dev/null in /etc,
// where systemd looks first, so nothing starts it.
func unitMasked(root rootfs.FS, unit string) bool {
	target, err := root.ReadLink("etc/systemd/system/" + unit)
	return err == nil && target == "/dev/null"
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

func repairClientAlive(t *Target, o *Overlay) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	main, err := o.Read(sshdConfigFile)
	if err != nil {
		return err
	}
	entries, err := sshdEntries(root)
	if err != nil {
		return err
	}
	var winner *Location
	for _, e := range entries {
		if e.key == "clientaliveinterval" {
			winner = &e.at
			break
		}
	}
	// sshd takes the first value it reads. A drop-in an Include reads
	// before the main file's setting (or where nothing sets it) wins, and
	// leaves the distribution's file untouched; a setting elsewhere, in a
	// drop-in or before the Include, is changed where it stands.
	if (winner == nil || winner.File == "/"+sshdConfigFile) && sshdIncludes(entries, winner, sshdDropIn) {
		o.Write(strings.TrimPrefix(sshdDropIn, "/"), []byte(clientAliveText))
		return nil
	}
	if winner != nil {
		return editLine(o, strings.TrimPrefix(winner.File, "/"), winner.Line, func(string) (string, error) { return "ClientAliveInterval 180", nil })
	}
	o.Write(sshdConfigFile, append([]byte(clientAliveText), main...))
	return nil
}

// The drop-in SSH002's repair writes where sshd_config includes it, and
// what it says.
const (
	sshdDropIn      = "/etc/ssh/sshd_config.d/05-vhdprep-azure.conf"
	clientAliveText = "# Azure's load balancer drops idle connections after 4 minutes (SSH002).\nClientAliveInterval 180\n"
)

func repairSudoers(t *Target, o *Overlay) error {
	fs, err := checkSudoers(t)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if err := editLine(o, strings.TrimPrefix(f.Location.File, "/"), f.Location.Line, withoutTargetpw); err != nil {
			return err
		}
	}
	return nil
}

// withoutTargetpw is a sudoers line without targetpw: a Defaults line
// that sets more keeps the rest, any other is commented out.
func withoutTargetpw(line string) (string, error) {
	binding, params, ok := sudoersDefaults(cutSudoersComment(strings.TrimSpace(line)))
	if ok {
		rest := slices.DeleteFunc(params, func(p string) bool { return p == "targetpw" })
		if len(rest) > 0 {
			return "Defaults" + binding + " " + strings.Join(rest, ", ") + " # vhdprep (SEC005) took targetpw out", nil
		}
	}
	return disabledBy("SEC005", line), nil
}
