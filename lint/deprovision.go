package lint

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/vhdprep/vhdprep/rootfs/write"
)

// generalizationStep is one part of deprovisioning, named by the rule it
// satisfies.
type generalizationStep struct {
	id string
	do func(t *Target, o *Overlay) error
}

// Deprovision-only state that no rule checks: DHCP leases from the build.
var leaseDirs = []string{"var/lib/dhcp", "var/lib/dhclient", "var/lib/NetworkManager", "var/lib/dhcpcd", "var/lib/dhcpcd5"}

// Agent files a provisioned VM leaves in /var/lib/waagent.
var waagentStateSuffixes = []string{".xml", ".crt", ".prv", ".pem", ".json"}

// PlanDeprovision generalizes a guest so every VM made from it starts
// fresh: SSH host keys removed, machine-id emptied (not deleted), shell
// histories, agent state and DHCP leases removed, root's password locked.
// Accounts other than system ones are listed, and removed with their home
// directories only when removeUsers is set.
func PlanDeprovision(t *Target, removeUsers bool) (*Plan, []string, error) {
	root, err := t.root()
	if err != nil {
		return nil, nil, fmt.Errorf("deprovision needs the guest's files: %w", err)
	}
	// The check the plan answers, as fix's: what the image is before.
	p := &Plan{Report: Run(t, Catalog(), nil), Command: CommandDeprovision, overlay: write.NewOverlay(root)}
	users, err := loginUsers(t)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range deprovisionSteps(users, removeUsers) {
		before := p.overlay.Changes()
		rf := RuleFix{ID: s.id}
		if err := s.do(t, p.overlay); err != nil {
			rf.Error = err.Error()
		}
		rf.Files = newPaths(before, p.overlay.Changes())
		p.Rules = append(p.Rules, rf)
	}
	p.Changes = p.overlay.Changes()
	return p, users, nil
}

// DeprovisionOptions says what Deprovision generalizes, and how.
type DeprovisionOptions struct {
	// Open opens the image or tree, as FixOptions.Open does.
	Open        func(change bool) (*Target, error)
	RemoveUsers bool // remove the accounts other than system ones, with their homes
	DryRun      bool // plan, and change nothing
	// Planned, when set, is shown the plan and the accounts before
	// anything is written; on a dry run refused says why the real run
	// would be refused.
	Planned func(r *DeprovisionResult, refused error)
}

// DeprovisionResult is what Deprovision did.
type DeprovisionResult struct {
	Plan  *Plan
	Users []string // the accounts other than system ones, kept or removed
	// Written tells that the plan was written, and checked afterwards.
	Written bool
	After   *Report // check on a fresh view of what was written; nil after a dry run
}

// Deprovision is vhdprep deprovision: it plans the generalization, refuses
// a plan the image cannot take before it is shown, applies it, and checks
// the rules it claims to repair on a fresh view of what was written (a
// *NotConvergedError names those that still fail).
func Deprovision(ctx context.Context, opts DeprovisionOptions) (*DeprovisionResult, error) {
	target, err := opts.Open(!opts.DryRun)
	if err != nil {
		return nil, err
	}
	plan, users, err := PlanDeprovision(target, opts.RemoveUsers)
	if err != nil {
		target.Close()
		return nil, fmt.Errorf("deprovision %s: %w", target.Name, err)
	}
	res := &DeprovisionResult{Plan: plan, Users: users}
	after, err := plan.write(ctx, target, opts.Open, opts.DryRun, func(refused error) {
		if opts.Planned != nil {
			opts.Planned(res, refused)
		}
	})
	if after == nil {
		return res, err
	}
	defer after.Close()
	res.Written = true
	res.After, err = VerifyRepairs(after, Catalog(), &Config{}, CommandDeprovision, plan.Claimed())
	return res, err
}

// deprovisionSteps are the steps of deprovisioning, in order; removing the
// accounts users only with removeUsers.
func deprovisionSteps(users []string, removeUsers bool) []generalizationStep {
	steps := []generalizationStep{
		{"SEC003", removeHostKeys},
		{"SEC004", emptyMachineID},
		{"SEC002", removeHistories},
		{"SEC006", removeAgentState},
		{"leases", removeLeases},
		{"root", lockRoot},
	}
	if removeUsers {
		steps = append(steps, generalizationStep{"SEC001", func(t *Target, o *Overlay) error { return removeAccounts(t, o, users) }})
	}
	return steps
}

func removeHostKeys(t *Target, o *Overlay) error {
	root, _ := t.root()
	ents, err := root.ReadDir("etc/ssh")
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "ssh_host_") {
			o.Remove("etc/ssh/" + e.Name())
		}
	}
	return nil
}

func emptyMachineID(t *Target, o *Overlay) error {
	root, _ := t.root()
	if b, _ := readFile(root, "etc/machine-id"); len(b) > 0 {
		o.Write("etc/machine-id", []byte{}) // systemd makes a new one at first boot
	}
	if info, err := root.Lstat("var/lib/dbus/machine-id"); err == nil && info.Mode().IsRegular() {
		o.Remove("var/lib/dbus/machine-id")
	}
	return nil
}

func removeHistories(t *Target, o *Overlay) error {
	fs, err := checkHistories(t)
	for _, f := range fs {
		o.Remove(strings.TrimPrefix(f.Location.File, "/"))
	}
	return err
}

func removeAgentState(t *Target, o *Overlay) error {
	root, _ := t.root()
	for _, p := range agentState {
		info, err := root.Lstat(p)
		switch {
		case err != nil:
		case info.IsDir():
			if err := o.RemoveTree(p); err != nil {
				return err
			}
		default:
			o.Remove(p)
		}
	}
	ents, _ := root.ReadDir("var/lib/waagent")
	for _, e := range ents {
		for _, suffix := range waagentStateSuffixes {
			if !e.IsDir() && strings.HasSuffix(e.Name(), suffix) {
				o.Remove("var/lib/waagent/" + e.Name())
			}
		}
	}
	return nil
}

func removeLeases(t *Target, o *Overlay) error {
	root, _ := t.root()
	for _, dir := range leaseDirs {
		ents, _ := root.ReadDir(dir)
		for _, e := range ents {
			if !e.IsDir() && strings.Contains(e.Name(), "lease") {
				o.Remove(dir + "/" + e.Name())
			}
		}
	}
	return nil
}

// lockRoot turns root's password hash into a locked one ("!" in front), so
// nobody logs in as root with the build's password.
func lockRoot(t *Target, o *Overlay) error {
	b, err := o.Read("etc/shadow")
	if err != nil {
		return nil // no shadow file: nothing to lock
	}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && f[0] == "root" && f[1] != "" && !strings.HasPrefix(f[1], "!") && !strings.HasPrefix(f[1], "*") {
			return editLine(o, "etc/shadow", i+1, func(l string) (string, error) { return "root:!" + l[len("root:"):], nil })
		}
	}
	return nil
}

// Regular accounts, as useradd numbers them.
const (
	firstUserUID = 1000
	lastUserUID  = 59999
)

// loginUsers lists the accounts that are not system accounts.
func loginUsers(t *Target) ([]string, error) {
	root, _ := t.root()
	accts, err := accounts(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range accts {
		if a.uid >= firstUserUID && a.uid <= lastUserUID && loginShell(a.shell) {
			out = append(out, a.name)
		}
	}
	return out, nil
}

// removeAccounts removes accounts from passwd, shadow, group and gshadow
// (their own groups, and their names from member lists), and their homes.
func removeAccounts(t *Target, o *Overlay, users []string) error {
	if len(users) == 0 {
		return nil
	}
	root, _ := t.root()
	accts, _ := accounts(root)
	gone := map[string]bool{}
	for _, u := range users {
		gone[u] = true
	}
	for _, f := range []string{"etc/passwd", "etc/shadow", "etc/group", "etc/gshadow"} {
		b, err := o.Read(f)
		if err != nil {
			continue
		}
		var kept []string
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Split(line, ":")
			if gone[fields[0]] {
				continue
			}
			if (f == "etc/group" || f == "etc/gshadow") && len(fields) >= 4 {
				last := len(fields) - 1
				var members []string
				for _, m := range strings.Split(fields[last], ",") {
					if m != "" && !gone[m] {
						members = append(members, m)
					}
				}
				fields[last] = strings.Join(members, ",")
				line = strings.Join(fields, ":")
			}
			kept = append(kept, line)
		}
		o.Write(f, []byte(strings.Join(kept, "\n")))
	}
	for _, a := range accts {
		home := path.Clean(a.home)
		if gone[a.name] && removableHome(home) {
			if info, err := root.Lstat(home); err == nil && info.IsDir() {
				if err := o.RemoveTree(home); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// removableHome tells whether deprovision removes a home with its account:
// only homes under /home, as an account whose home is /etc or / must
// never take that with it.
func removableHome(home string) bool {
	home = path.Clean(home)
	return strings.HasPrefix(home, "home/") || strings.HasPrefix(home, "var/home/")
}
