package lint

import (
	"fmt"
	iofs "io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/vhdprep/vhdprep/rootfs"
)

// dhcpSetup finds what configures the primary interface by DHCP.
func dhcpSetup(root rootfs.FS) string {
	grepDir := func(dir, suffix string, re *regexp.Regexp) string {
		ents, _ := root.ReadDir(dir)
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), suffix) {
				continue
			}
			if b, _ := readFile(root, dir+"/"+e.Name()); re.Match(b) {
				return "/" + dir + "/" + e.Name()
			}
		}
		return ""
	}
	for _, c := range []struct {
		dir, suffix string
		re          *regexp.Regexp
	}{
		{"etc/netplan", ".yaml", regexp.MustCompile(`dhcp4:\s*(true|yes)`)},
		{"etc/systemd/network", ".network", regexp.MustCompile(`(?m)^DHCP=(yes|ipv4|true)`)},
		{"usr/lib/systemd/network", ".network", regexp.MustCompile(`(?m)^DHCP=(yes|ipv4|true)`)},
		{"etc/sysconfig/network-scripts", "", regexp.MustCompile(`(?m)^BOOTPROTO=["']?dhcp`)},
		{"etc/NetworkManager/system-connections", "", regexp.MustCompile(`(?m)^method=auto`)},
		{"etc/network", "interfaces", regexp.MustCompile(`(?m)^\s*iface\s+\S+\s+inet\s+dhcp`)},
		{"etc/sysconfig/network", "", regexp.MustCompile(`(?m)^BOOTPROTO=["']?dhcp`)},
	} {
		if f := grepDir(c.dir, c.suffix, c.re); f != "" {
			return f
		}
	}
	// NetworkManager with no connection files makes a DHCP connection for
	// every wired interface by itself.
	if exists(root, "usr/sbin/NetworkManager") && unitEnabled(root, "NetworkManager.service") {
		return "NetworkManager (automatic wired connections)"
	}
	return ""
}

func checkDHCP(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	if dhcpSetup(root) != "" {
		return nil, nil
	}
	return []Finding{{Message: "nothing configures the network by DHCP (netplan, systemd-networkd, ifupdown, ifcfg, NetworkManager); the VM gets no address"}}, nil
}

// firewallFiles hold saved firewall rules in formats no rule is run for
// here: a line that names the wire server with a drop or reject is taken
// as blocking it. iptables-save output and nftables rulesets are run
// (firewallPolicies), rule by rule, as the kernel would: a drop of the
// wire server's other ports, or of others' connections after root's are
// accepted (the agents' own guard), blocks nothing.
var firewallFiles = []string{"etc/firewalld/direct.xml", "etc/ufw/before.rules", "etc/ufw/user.rules"}

// firewallPolicies read the files whose default policy may drop the wire
// server's traffic without naming it: iptables-save output, nftables
// rulesets, firewalld policy objects (a zone's target is about incoming
// traffic only).
var firewallPolicies = []struct {
	glob     string
	block    func([]byte) (block, bool)
	includes bool // nftables: the files it includes count too
}{
	{"etc/iptables/rules.v4", iptablesBlock, false},
	{"etc/sysconfig/iptables", iptablesBlock, false},
	{"etc/nftables.conf", nftBlock, true},
	{"etc/sysconfig/nftables.conf", nftBlock, true},
	{"etc/firewalld/policies/*.xml", firewalldBlock, false},
}

// maxNftIncludes bounds how deep nftables includes are followed.
const maxNftIncludes = 4

// withNftIncludes lists name and the files it includes, in order, each
// once: `include "PATH"` (a glob; absolute, else under /etc, nft's
// default include directory, or beside the file for "./PATH").
func withNftIncludes(root rootfs.FS, name string, depth int, seen map[string]bool) []string {
	if seen[name] || depth > maxNftIncludes {
		return nil
	}
	seen[name] = true
	out := []string{name}
	b, _ := readFile(root, name)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "include" {
			continue
		}
		inc := strings.Trim(f[1], `"`)
		switch {
		case strings.HasPrefix(inc, "/"):
			inc = strings.TrimPrefix(inc, "/")
		case strings.HasPrefix(inc, "./"):
			inc = path.Join(path.Dir(name), inc)
		default:
			inc = path.Join("etc", inc)
		}
		matches, _ := iofs.Glob(root, inc)
		for _, m := range matches {
			out = append(out, withNftIncludes(root, m, depth+1, seen)...)
		}
	}
	return out
}

var wireServerBlocked = regexp.MustCompile(`168\.63\.129\.16.*(?i:drop|reject)|(?i:drop|reject).*168\.63\.129\.16`)

func checkWireServerReachable(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	var fs []Finding
	named := map[string]bool{}
	for _, f := range firewallFiles {
		b, err := readFile(root, f)
		if err != nil {
			return nil, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "#") && wireServerBlocked.MatchString(line) {
				fs = append(fs, Finding{Message: "a saved firewall rule blocks the wire server 168.63.129.16: " + strings.TrimSpace(line), Location: Location{File: "/" + f, Line: i + 1}})
				named[f] = true
			}
		}
	}
	for _, p := range firewallPolicies {
		files, _ := iofs.Glob(root, p.glob)
		if p.includes {
			seen := map[string]bool{}
			var all []string
			for _, f := range files {
				all = append(all, withNftIncludes(root, f, 0, seen)...)
			}
			files = all
		}
		for _, f := range files {
			if named[f] {
				continue // reported above, by the rule that names it
			}
			b, err := readFile(root, f)
			if err != nil {
				return nil, err
			}
			if blk, ok := p.block(b); ok {
				fs = append(fs, Finding{Message: "the saved firewall drops new connections to the wire server 168.63.129.16, which nothing accepts: " + blk.why,
					Location: Location{File: "/" + f, Line: blk.line}, Fix: "accept outbound TCP to 168.63.129.16 (ports 80 and 32526) before anything drops it"})
			}
		}
	}
	if blk, file, ok := ufwBlock(root); ok && !named[strings.TrimPrefix(file, "/")] {
		fs = append(fs, Finding{Message: "the saved firewall drops new connections to the wire server 168.63.129.16, which nothing accepts: " + blk.why,
			Location: Location{File: file, Line: blk.line}, Fix: "ufw allow out to 168.63.129.16 proto tcp"})
	}
	return fs, nil
}

var dhclientTimeout = regexp.MustCompile(`(?m)^\s*timeout\s+(\d+)\s*;`)

func checkDHClientTimeout(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	for _, f := range []string{"etc/dhcp/dhclient.conf", "etc/dhclient.conf"} {
		b, err := readFile(root, f)
		if err != nil || b == nil {
			continue
		}
		m := dhclientTimeout.FindSubmatch(b)
		if n, _ := strconv.Atoi(string(submatch(m))); m == nil || n < 300 {
			return []Finding{{Message: fmt.Sprintf("dhclient's timeout is %s; set timeout 300;", orDefault(submatch(m), "its default of 60 s")), Location: Location{File: "/" + f}}}, nil
		}
		return nil, nil
	}
	return nil, Skip("dhclient is not configured in this image")
}

func submatch(m [][]byte) []byte {
	if m == nil {
		return nil
	}
	return m[1]
}

func orDefault(b []byte, def string) string {
	if b == nil {
		return def
	}
	return string(b) + " s"
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
