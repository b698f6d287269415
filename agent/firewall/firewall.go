// Package firewall guards the wire server as WALinuxAgent does
// (azurelinuxagent/ga/firewall_manager.py): new TCP connections to it are
// dropped unless they go to DNS (port 53, which every user needs) or come
// from the agent's own user. Without it any local user can ask the wire
// server for the tenant certificates with a transport key of its own and
// decrypt every extension's protected settings.
//
// nftables is used when nft is installed, else iptables. Applying is
// idempotent: the agent applies the rules at every start and never stacks
// a second copy.
package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
)

// System runs the firewall tools. provision.Host is one.
type System interface {
	LookPath(name string) (string, error)
	Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error)
}

// Guard installs or removes the rules for one wire server address.
type Guard struct {
	Sys System
	// WireServer is the address to guard (168.63.129.16 on Azure).
	WireServer netip.Addr
	// UID is the user whose connections pass: the agent's (root).
	UID int
}

// New guards addr for the calling process's user, as WALinuxAgent does.
func New(sys System, addr netip.Addr) *Guard {
	return &Guard{Sys: sys, WireServer: addr, UID: os.Getuid()}
}

// The table (nftables) and chain (iptables) the rules live in.
const (
	nftTable      = "vhdprep-agent"
	iptablesTable = "security"
	iptablesChain = "OUTPUT"
	// maxDeletes bounds the loop deleting copies of a rule, as
	// WALinuxAgent's (a rule iptables keeps accepting -D for is a bug).
	maxDeletes = 100
)

var (
	// ErrNoTool: neither nft nor iptables is installed.
	ErrNoTool = errors.New("neither nft nor iptables is installed; the wire server stays open to every local user (install nftables, or set Firewall.Enabled=n)")
	// ErrNotIPv4 refuses an address the rules cannot name.
	ErrNotIPv4 = errors.New("the wire server address is not an IPv4 address")
)

// Backend names the tool Apply would use: "nft", "iptables" or "".
func (g *Guard) Backend() string {
	for _, name := range []string{"nft", "iptables"} {
		if _, err := g.Sys.LookPath(name); err == nil {
			return name
		}
	}
	return ""
}

// Apply installs the rules, replacing any copy an earlier start left, and
// returns the tool it used.
func (g *Guard) Apply(ctx context.Context) (string, error) {
	if !g.WireServer.Is4() {
		return "", fmt.Errorf("firewall: %w: %s", ErrNotIPv4, g.WireServer)
	}
	switch b := g.Backend(); b {
	case "nft":
		return b, g.run(ctx, "nft", []string{"-f", "-"}, []byte(g.NftScript()))
	case "iptables":
		return b, g.applyIptables(ctx)
	}
	return "", ErrNoTool
}

// Remove takes the rules away (Firewall.Enabled=n), leaving alone what
// is not there.
func (g *Guard) Remove(ctx context.Context) error {
	if !g.WireServer.Is4() {
		return nil
	}
	switch g.Backend() {
	case "nft":
		// Adding an existing table is a no-op, so the delete always finds it.
		return g.run(ctx, "nft", []string{"-f", "-"}, []byte("add table ip "+nftTable+"\ndelete table ip "+nftTable+"\n"))
	case "iptables":
		for _, r := range g.IptablesRules() {
			if err := g.deleteAll(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// NftScript is the nft transaction Apply runs: WALinuxAgent's one rule in
// a table of the agent's own, which the script first empties by deleting
// it, all in one atomic transaction (no moment without the rule).
func (g *Guard) NftScript() string {
	return "add table ip " + nftTable + "\n" +
		"delete table ip " + nftTable + "\n" +
		"add table ip " + nftTable + "\n" +
		"add chain ip " + nftTable + " output { type filter hook output priority 0 ; policy accept ; }\n" +
		"add rule ip " + nftTable + " output ip daddr " + g.WireServer.String() +
		" tcp dport != 53 meta skuid != " + strconv.Itoa(g.UID) + " ct state invalid,new counter drop\n"
}

// IptablesRules are WALinuxAgent's three rules in order, each the
// arguments after the -A/-C/-D option.
func (g *Guard) IptablesRules() [][]string {
	dst := []string{iptablesChain, "-d", g.WireServer.String(), "-p", "tcp"}
	rule := func(rest ...string) []string { return append(append([]string{}, dst...), rest...) }
	return [][]string{
		rule("--destination-port", "53", "-j", "ACCEPT"),
		rule("-m", "owner", "--uid-owner", strconv.Itoa(g.UID), "-j", "ACCEPT"),
		rule("-m", "conntrack", "--ctstate", "INVALID,NEW", "-j", "DROP"),
	}
}

func iptablesArgs(op string, rule []string) []string {
	return append([]string{"-w", "-t", iptablesTable, op}, rule...)
}

// applyIptables leaves the rules alone when all three are there, and
// otherwise deletes every copy of each and appends the three in order:
// the order matters, the drop comes last.
func (g *Guard) applyIptables(ctx context.Context) error {
	rules := g.IptablesRules()
	all := true
	for _, r := range rules {
		ok, err := g.present(ctx, r)
		if err != nil {
			return err
		}
		all = all && ok
	}
	if all {
		return nil
	}
	for _, r := range rules {
		if err := g.deleteAll(ctx, r); err != nil {
			return err
		}
	}
	for _, r := range rules {
		if err := g.run(ctx, "iptables", iptablesArgs("-A", r), nil); err != nil {
			return err
		}
	}
	return nil
}

// present runs iptables -C: exit status 1 means the rule is absent.
func (g *Guard) present(ctx context.Context, rule []string) (bool, error) {
	_, err := g.Sys.Run(ctx, "iptables", iptablesArgs("-C", rule), nil)
	if absent(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("firewall: %w", err)
	}
	return true, nil
}

func (g *Guard) deleteAll(ctx context.Context, rule []string) error {
	for range maxDeletes {
		_, err := g.Sys.Run(ctx, "iptables", iptablesArgs("-D", rule), nil)
		if absent(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("firewall: %w", err)
		}
	}
	return fmt.Errorf("firewall: iptables still has the rule %v after %d deletions", rule, maxDeletes)
}

// absent tells an iptables "no such rule" (exit status 1) from a failure.
func absent(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == 1
}

func (g *Guard) run(ctx context.Context, name string, args []string, stdin []byte) error {
	if _, err := g.Sys.Run(ctx, name, args, stdin); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	return nil
}
