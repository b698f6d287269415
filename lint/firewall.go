package lint

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/vhdprep/vhdprep/guest/agents"
	"github.com/vhdprep/vhdprep/rootfs"
)

// wireServer is the address of Azure's wire server, which provisioning,
// the agent's reports and extensions all reach.
var wireServer = netip.MustParseAddr("168.63.129.16")

// A verdict is what a firewall rule does with a new outbound connection to
// the wire server. Where a rule may or may not match (a port, a set named
// elsewhere, a jump), it counts as accepting: the gate reports a block
// only when the configuration surely drops the traffic.
type verdict int

const (
	passes  verdict = iota // the rule does not match; the next one decides
	accepts                // it accepts, or may
	drops                  // it surely drops or rejects
)

// block is a firewall configuration that drops the wire server's traffic:
// the line that decides, and why.
type block struct {
	line int
	why  string
}

// containsWireServer tells whether an address or prefix covers the wire
// server; ok is false when s is neither.
func containsWireServer(s string) (in, ok bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Contains(wireServer), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a == wireServer, true
	}
	return false, false
}

// The wire server's port for provisioning, reports and extensions' goal
// state: a rule for other ports alone does not decide its traffic.
const wireServerPort = 80

// serviceNames are the port names nft prints for the wire server's port
// (from /etc/services, as `nft list ruleset` resolves them).
var serviceNames = map[string]int{"http": 80, "www": 80}

// portsInclude tells whether a port list (iptables "80,443", "1024:2048";
// nftables "1024-2048") may include port, and whether that is known: a
// service name other than serviceNames may be any port.
func portsInclude(list []string, port int) (may, known bool) {
	known = true
	for _, p := range list {
		if n, ok := serviceNames[p]; ok {
			p = strconv.Itoa(n)
		}
		lo, hi, isRange := strings.Cut(p, ":")
		if !isRange {
			lo, hi, isRange = strings.Cut(p, "-")
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if !isRange {
			b, err2 = a, err1
		}
		if err1 != nil || err2 != nil {
			may, known = true, false
		} else if a <= port && port <= b {
			may = true
		}
	}
	return may, known
}

// iptables targets that let the packet go on to the next rule.
var iptablesNonTerminal = []string{"LOG", "NFLOG", "ULOG", "AUDIT", "MARK", "CONNMARK", "CLASSIFY", "TRACE", "RETURN"}

// iptablesVerdict classifies an OUTPUT rule of the filter table, given as
// iptables-save writes it after "-A OUTPUT": matches, then the target and
// its own options.
func iptablesVerdict(args []string) verdict {
	target, surely := "", true
args:
	for i := 0; i < len(args); i++ {
		neg := args[i] == "!"
		if neg && i+1 < len(args) {
			i++
		}
		opt, val := args[i], ""
		if i+1 < len(args) {
			val = args[i+1]
		}
		switch opt {
		case "-j", "--jump", "-g", "--goto":
			target = val
			break args // what follows are the target's options
		case "-d", "--destination":
			i++
			in, ok := containsWireServer(val)
			if ok && in == neg {
				return passes // not the wire server's address
			}
			surely = surely && ok
		case "-o", "--out-interface":
			i++
			if (val == "lo") != neg {
				return passes
			}
			surely = false
		case "-p", "--protocol":
			i++
			if tcp := val == "tcp" || val == "6" || val == "all" || val == "0"; tcp == neg {
				return passes
			}
		case "--dport", "--destination-port", "--dports", "--destination-ports":
			i++
			may, known := portsInclude(strings.Split(val, ","), wireServerPort)
			if may == neg {
				return passes
			}
			surely = surely && known
		case "--state", "--ctstate":
			i++
			if slices.Contains(strings.Split(val, ","), "NEW") == neg {
				return passes
			}
		case "-m", "--match":
			i++
			if !slices.Contains([]string{"state", "conntrack", "comment", "tcp", "multiport"}, val) {
				surely = false
			}
		case "--comment":
			i++
		default:
			surely = false // an owner, mark or other match
		}
	}
	switch {
	case target == "DROP" || target == "REJECT":
		if surely {
			return drops
		}
		return passes
	case slices.Contains(iptablesNonTerminal, target):
		return passes
	}
	return accepts // ACCEPT, or a jump to a chain that may accept
}

// iptablesBlock reads iptables-save output (/etc/iptables/rules.v4,
// /etc/sysconfig/iptables): does the filter table's OUTPUT chain drop
// new connections to the wire server, by a rule or by its policy? "-P
// OUTPUT DROP" lines, as scripts of iptables commands have them, count
// as the policy too.
func iptablesBlock(b []byte) (block, bool) {
	v, line, policy := iptablesChain(b, "OUTPUT")
	switch {
	case v == drops:
		return block{line, dropsWhat("OUTPUT", strings.Split(string(b), "\n")[line-1])}, true
	case v == passes && policy > 0:
		return block{policy, "the OUTPUT chain's policy is DROP"}, true
	}
	return block{}, false
}

// iptablesChain runs the rules of a filter-table chain in iptables-save
// text, in order: the verdict of the first that decides, and its line
// (passes when none does), and the line that sets the chain's policy to
// DROP, if one does.
func iptablesChain(b []byte, chain string) (v verdict, line, policy int) {
	table := "filter"
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
		case strings.HasPrefix(f[0], "*"):
			table = f[0][1:]
		case table != "filter":
		case f[0] == ":"+chain && len(f) > 1:
			policy = dropPolicy(n, f[1])
		case f[0] == "-P" && len(f) > 2 && f[1] == chain:
			policy = dropPolicy(n, f[2])
		case f[0] == "-A" && len(f) > 1 && f[1] == chain:
			if v := iptablesVerdict(f[2:]); v != passes {
				return v, n, policy
			}
		case f[0] == "COMMIT":
			return passes, 0, policy
		}
	}
	return passes, 0, policy
}

// dropsWhat says what a chain's rule that surely drops the wire server's
// new connections drops: them, where it names the address, else all.
func dropsWhat(chain, rule string) string {
	if strings.Contains(rule, wireServer.String()) {
		return "this " + chain + " rule drops them"
	}
	return "this " + chain + " rule drops all new outbound traffic"
}

// dropPolicy is line n when a chain's policy p drops, else 0.
func dropPolicy(n int, p string) int {
	if p == "DROP" {
		return n
	}
	return 0
}

// ufw's files: its switch, its default policies, and the rules files
// whose output chains run before the default outgoing policy applies.
const (
	ufwConf     = "etc/ufw/ufw.conf"
	ufwDefaults = "etc/default/ufw"
)

var ufwOutputChains = []struct{ file, chain string }{
	{"etc/ufw/before.rules", "ufw-before-output"},
	{"etc/ufw/user.rules", "ufw-user-output"},
	{"etc/ufw/after.rules", "ufw-after-output"},
}

// ufwBlock reads ufw's configuration (Ubuntu's firewall): enabled, with
// a default outgoing policy of DROP or REJECT (`ufw default deny
// outgoing`), and no rule of its output chains that may accept the wire
// server's traffic. It returns the file that decides.
func ufwBlock(root rootfs.FS) (block, string, bool) {
	conf, _, _ := agents.KeyValueConf(root, ufwConf)
	defaults, lines, _ := agents.KeyValueConf(root, ufwDefaults)
	policy := strings.Trim(defaults["DEFAULT_OUTPUT_POLICY"], `"`)
	if conf["ENABLED"] != "yes" || policy != "DROP" && policy != "REJECT" {
		return block{}, "", false
	}
	for _, c := range ufwOutputChains {
		b, _ := readFile(root, c.file)
		switch v, line, _ := iptablesChain(b, c.chain); v {
		case accepts:
			return block{}, "", false
		case drops:
			return block{line, "this ufw rule drops all new outbound traffic"}, "/" + c.file, true
		}
	}
	return block{lines["DEFAULT_OUTPUT_POLICY"], "ufw is enabled and its default outgoing policy is " + policy}, "/" + ufwDefaults, true
}

// nftStatement is one statement of an nftables file, with the line it
// starts on.
type nftStatement struct {
	line  int
	words []string
}

// nftStatements splits nftables syntax into statements, blocks marked by the
// words "{" and "}" on their own; anonymous sets ({ a, b }) stay inside
// their statement, as one word each element.
func nftStatements(b []byte) []nftStatement {
	var out []nftStatement
	var cur nftStatement
	depth := 0 // inside an anonymous set
	flush := func() {
		if len(cur.words) > 0 {
			out = append(out, cur)
		}
		cur = nftStatement{}
	}
	for n, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.NewReplacer("{", " { ", "}", " } ", ";", " ; ", ",", " ").Replace(line)
		for _, w := range strings.Fields(line) {
			if cur.line == 0 {
				cur.line = n + 1
			}
			switch {
			case w == "{" && (depth > 0 || len(cur.words) > 0 && !nftBlockOpener(cur.words)):
				depth++
				cur.words = append(cur.words, w)
			case w == "}" && depth > 0:
				depth--
				cur.words = append(cur.words, w)
			case w == "{" || w == "}":
				cur.words = append(cur.words, w)
				flush()
			case w == ";" && depth == 0:
				flush()
			default:
				cur.words = append(cur.words, w)
			}
		}
		if depth == 0 {
			flush()
		}
	}
	flush()
	return out
}

// nftBlockOpener tells whether a statement's words so far open a block
// (table, chain, set...) rather than an anonymous set.
func nftBlockOpener(words []string) bool {
	switch words[0] {
	case "table", "chain", "set", "map", "flowtable", "counter", "quota", "limit", "secmark", "synproxy":
		return true
	case "ct": // ct helper, timeout and expectation objects; not a rule's ct match
		return len(words) > 1 && (words[1] == "helper" || words[1] == "timeout" || words[1] == "expectation")
	}
	return false
}

// nftVerdict classifies a rule of an output chain.
func nftVerdict(words []string) verdict {
	surely := true
	for i := 0; i < len(words); i++ {
		switch w := words[i]; w {
		case "accept", "jump", "goto", "vmap", "queue":
			return accepts
		case "drop", "reject":
			if surely {
				return drops
			}
			return passes
		case "ip", "ct", "meta", "counter", "log":
		case "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6":
			if i+1 < len(words) && nftHeaderFields[words[i+1]] {
				return passes // not the wire server's TCP
			}
			surely = false
		case "tcp":
			if i+1 >= len(words) || words[i+1] != "dport" {
				surely = false // flags, options: not known to match
				continue
			}
			vals, neg, n := nftValues(words, i+2)
			may, known := portsInclude(vals, wireServerPort)
			if may == neg {
				return passes
			}
			surely = surely && known
			i += n + 1
		case "oif", "oifname", "daddr", "state":
			vals, neg, n := nftValues(words, i+1)
			i += n
			switch w {
			case "daddr":
				in, known := false, true
				for _, x := range vals {
					c, ok := containsWireServer(x)
					in, known = in || c, known && ok
				}
				if known && in == neg {
					return passes
				}
				surely = surely && known
			case "state":
				if slices.Contains(vals, "new") == neg {
					return passes
				}
			default:
				if slices.Contains(vals, "lo") != neg {
					return passes
				}
				surely = false
			}
		default:
			surely = false // a port, protocol, set or other match
		}
	}
	return passes
}

// nftHeaderFields are the fields a protocol's header match names.
var nftHeaderFields = map[string]bool{"dport": true, "sport": true, "type": true, "code": true, "length": true, "checksum": true}

// nftValues are the values after a match keyword, from words[i]: one
// word, or the elements of an anonymous set, unquoted; neg tells a "!="
// before them, and n how many words they take.
func nftValues(words []string, i int) (vals []string, neg bool, n int) {
	start := i
	if i < len(words) && words[i] == "!=" {
		neg, i = true, i+1
	}
	if i < len(words) && words[i] == "{" {
		for i++; i < len(words) && words[i] != "}"; i++ {
			vals = append(vals, strings.Trim(words[i], `"`))
		}
	} else if i < len(words) {
		vals = append(vals, strings.Trim(words[i], `"`))
	}
	return vals, neg, i + 1 - start
}

// nftBlock reads an nftables ruleset (/etc/nftables.conf, as `nft list
// ruleset` prints it): does a filter chain on the output hook (of an ip or
// inet table) drop new connections to the wire server, by a rule or by
// its policy? Every base chain of a hook must accept a packet, so one
// that drops it is enough.
func nftBlock(b []byte) (block, bool) {
	type chain struct {
		output bool
		policy block
		done   bool
		found  block
	}
	var stack []string // "table FAMILY", "chain", other blocks
	var c *chain
	for _, s := range nftStatements(b) {
		w := s.words
		switch {
		case w[len(w)-1] == "{":
			kind := w[0]
			if kind == "table" {
				family := "ip"
				if len(w) > 3 {
					family = w[1]
				}
				kind += " " + family
			}
			stack = append(stack, kind)
			if kind == "chain" && len(stack) == 2 && (stack[0] == "table ip" || stack[0] == "table inet") {
				c = &chain{}
			}
		case w[0] == "}":
			if len(stack) > 0 && stack[len(stack)-1] == "chain" && c != nil {
				if c.output && !c.done && c.policy.line > 0 {
					return c.policy, true
				}
				if c.output && c.found.line > 0 {
					return c.found, true
				}
				c = nil
			}
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case c == nil:
		case w[0] == "type":
			c.output = slices.Contains(w, "hook") && slices.Contains(w, "output") && slices.Contains(w, "filter")
		case w[0] == "policy" && len(w) > 1:
			if w[1] == "drop" {
				c.policy = block{s.line, "the output chain's policy is drop"}
			}
		case !c.done:
			switch nftVerdict(w) {
			case accepts:
				c.done = true
			case drops:
				c.done, c.found = true, block{s.line, dropsWhat("output", strings.Join(w, " "))}
			}
		}
	}
	return block{}, false
}

// firewalldPolicy is a firewalld policy object (firewalld 0.9 and later:
// /etc/firewalld/policies/NAME.xml), the only place firewalld filters the
// host's own outbound traffic; a zone's target governs what comes in, and
// replies to the host's connections are always accepted.
type firewalldPolicy struct {
	Target   string `xml:"target,attr"`
	Ingress  []zone `xml:"ingress-zone"`
	Egress   []zone `xml:"egress-zone"`
	Services []zone `xml:"service"`
	Ports    []zone `xml:"port"`
	Protos   []zone `xml:"protocol"`
	Rules    []struct {
		Family      string    `xml:"family,attr"`
		IcmpType    *struct{} `xml:"icmp-type"`
		Destination *struct {
			Address string `xml:"address,attr"`
			Invert  string `xml:"invert,attr"`
		} `xml:"destination"`
		Accept *struct{} `xml:"accept"`
	} `xml:"rule"`
}

type zone struct {
	Name string `xml:"name,attr"`
	Port string `xml:"port,attr"`
}

// firewalldBlock reads a policy: from the host (ingress zone HOST) to
// anywhere, target DROP or REJECT, and nothing it accepts that the wire
// server's traffic may be.
func firewalldBlock(b []byte) (block, bool) {
	var p firewalldPolicy
	if err := xml.Unmarshal(b, &p); err != nil {
		return block{}, false
	}
	if p.Target != "DROP" && p.Target != "REJECT" || !slices.ContainsFunc(p.Ingress, func(z zone) bool { return z.Name == "HOST" }) || len(p.Egress) == 0 {
		return block{}, false
	}
	if len(p.Services)+len(p.Ports)+len(p.Protos) > 0 {
		return block{}, false // services and ports it lets out may be the wire server's
	}
	for _, r := range p.Rules {
		if r.Accept == nil || r.Family == "ipv6" || r.IcmpType != nil {
			continue // cannot be the wire server's TCP over IPv4
		}
		if r.Destination == nil {
			return block{}, false
		}
		if in, ok := containsWireServer(r.Destination.Address); !ok || in != (r.Destination.Invert == "true" || r.Destination.Invert == "yes") {
			return block{}, false
		}
	}
	return block{why: fmt.Sprintf("this firewalld policy's target is %s for the host's outbound traffic", p.Target)}, true
}
