package lint

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// wireServerProbe loads a ruleset ($1: iptables-restore or nft -f -, the
// ruleset on stdin) in a fresh network namespace whose route to the wire
// server goes out one end of a veth pair, tries a TCP connection to its
// port 80 as root, and prints how many packets reached the other end: none
// when the ruleset stops the connection before it leaves (not even the
// ARP request for the address).
const wireServerProbe = `set -e
ip link add v0 type veth peer name v1
for l in v0 v1; do ip link set $l addrgenmode none; ip link set $l up; done
ip addr add 10.1.1.1/24 dev v0
ip route add 168.63.129.16/32 dev v0
$1
rx() { ip -s -o link show dev v1 | sed 's/.*RX: *bytes *packets[^\\]*\\ *[0-9]* *\([0-9]*\).*/\1/'; }
a=$(rx)
timeout 0.5 bash -c 'exec 3<>/dev/tcp/168.63.129.16/80' 2>/dev/null || true
echo $(( $(rx) - a ))
`

// NET002 agrees with the kernel: each ruleset, loaded by the real
// iptables-restore or nft in a network namespace, stops a connection to
// the wire server exactly where check says it blocks it.
func TestWireServerBlockAgreesWithTheKernel(t *testing.T) {
	testimage.RequireTools(t, "unshare", "iptables-restore", "nft", "ip")
	// A network namespace of its own; as root no user namespace, so the
	// kernel may load nf_tables and veth (it loads no module for one).
	ns := "-rn"
	if os.Geteuid() == 0 {
		ns = "-n"
	}
	can := exec.Command("unshare", ns, "sh", "-c", `ip link add v0 type veth peer name v1 && printf '*filter\nCOMMIT\n' | iptables-restore && echo 'table ip t { }' | nft -f -`)
	if out, err := can.CombinedOutput(); err != nil {
		t.Skipf("no network namespace with veth, iptables and nftables here (%v: %s): the kernel cannot be asked", err, out)
	}
	fx := func(name string) string { return firewallFixture(t, name) }
	for _, c := range []struct {
		name, file, text string
	}{
		{"iptables OUTPUT DROP", "etc/iptables/rules.v4", fx("locked.iptables-save")},
		{"iptables OUTPUT DROP, wire server accepted", "etc/iptables/rules.v4", fx("allowed.iptables-save")},
		{"iptables catch-all REJECT", "etc/iptables/rules.v4", fx("reject.iptables-save")},
		{"iptables drop of the wire server", "etc/iptables/rules.v4", "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 168.63.129.16/32 -j DROP\nCOMMIT\n"},
		{"iptables drop of another port", "etc/iptables/rules.v4", "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 168.63.129.16/32 -p tcp -m tcp --dport 443 -j DROP\nCOMMIT\n"},
		{"iptables guard as the agents make it", "etc/iptables/rules.v4", "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 168.63.129.16/32 -p tcp -m owner --uid-owner 0 -j ACCEPT\n-A OUTPUT -d 168.63.129.16/32 -p tcp -m conntrack --ctstate INVALID,NEW -j DROP\nCOMMIT\n"},
		{"nftables output policy drop", "etc/nftables.conf", fx("locked.nft")},
		{"nftables output policy drop, wire server accepted", "etc/nftables.conf", fx("allowed.nft")},
		{"Debian's stock nftables.conf", "etc/nftables.conf", fx("debian-nftables.conf")},
		{"iptables drop of everyone's port 80", "etc/iptables/rules.v4", "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset\nCOMMIT\n"},
		{"iptables drop of others' port 80", "etc/iptables/rules.v4", "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp -m tcp --dport 80 -m owner ! --uid-owner 0 -j DROP\nCOMMIT\n"},
		{"nftables drop of the wire server", "etc/nftables.conf", "table inet f {\n\tchain o {\n\t\ttype filter hook output priority 0; policy accept;\n\t\tip daddr 168.63.129.16 tcp dport 80 drop\n\t}\n}\n"},
		{"nftables drop of its ports by name", "etc/nftables.conf", "table ip f {\n\tchain o {\n\t\ttype filter hook output priority 0; policy accept;\n\t\tip daddr 168.63.129.16 tcp dport { http, 32526 } drop\n\t}\n}\n"},
		{"nftables drop of another port", "etc/nftables.conf", "table ip f {\n\tchain o {\n\t\ttype filter hook output priority 0; policy accept;\n\t\tip daddr 168.63.129.16 tcp dport != 80 drop\n\t}\n}\n"},
	} {
		load := "iptables-restore"
		if strings.HasSuffix(c.file, ".conf") {
			load = "nft -f -"
		}
		cmd := exec.Command("unshare", ns, "sh", "-c", wireServerProbe, "probe", load)
		cmd.Stdin = strings.NewReader(c.text)
		out, err := cmd.CombinedOutput()
		left, perr := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil || perr != nil {
			t.Fatalf("%s: the probe: %v\n%s", c.name, err, out)
		}
		o := outcome(t, tree(t, map[string]string{c.file: c.text}), "NET002")
		if blocked := left == 0; (o.Status == Failed) != blocked {
			t.Errorf("%s: NET002 %s, but the kernel %s", c.name, o.Status, map[bool]string{true: "stops the connection", false: fmt.Sprintf("lets it out (%d packets)", left)}[blocked])
		}
	}
}
