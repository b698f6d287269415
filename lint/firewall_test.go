package lint

import (
	"os"
	"strings"
	"testing"
)

func firewallFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/firewall/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// NET002 sees configurations that drop the wire server's traffic by a
// default policy or a catch-all rule, not only rules that name it; ones
// that accept it, or drop only incoming traffic, pass.
func TestWireServerBlockedByPolicy(t *testing.T) {
	fx := func(name string) string { return firewallFixture(t, name) }
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string // the finding's location and reason; "" for a pass
	}{
		{"iptables OUTPUT DROP", map[string]string{"etc/iptables/rules.v4": fx("locked.iptables-save")}, "/etc/iptables/rules.v4:5 the OUTPUT chain's policy is DROP"},
		{"iptables OUTPUT DROP, wire server accepted", map[string]string{"etc/sysconfig/iptables": fx("allowed.iptables-save")}, ""},
		{"iptables catch-all REJECT", map[string]string{"etc/sysconfig/iptables": fx("reject.iptables-save")}, "/etc/sysconfig/iptables:10 this OUTPUT rule drops all new outbound traffic"},
		{"iptables script with -P", map[string]string{"etc/iptables/rules.v4": "-P OUTPUT DROP\n-A OUTPUT -o lo -j ACCEPT\n"}, "/etc/iptables/rules.v4:1 the OUTPUT chain's policy is DROP"},
		{"iptables OUTPUT DROP in another table only", map[string]string{"etc/iptables/rules.v4": "*mangle\n:OUTPUT DROP [0:0]\nCOMMIT\n"}, ""},
		{"nftables output policy drop", map[string]string{"etc/nftables.conf": fx("locked.nft")}, "/etc/nftables.conf:14 the output chain's policy is drop"},
		{"nftables output policy drop, wire server accepted", map[string]string{"etc/sysconfig/nftables.conf": fx("allowed.nft")}, ""},
		{"Debian's stock nftables.conf", map[string]string{"etc/nftables.conf": fx("debian-nftables.conf")}, ""},
		// RHEL's /etc/sysconfig/nftables.conf only includes the rulesets.
		{"nftables ruleset included", map[string]string{"etc/sysconfig/nftables.conf": "# Uncomment the include statement here to load the default config sample\n# in /etc/nftables for nftables service.\n\ninclude \"/etc/nftables/main.nft\"\n",
			"etc/nftables/main.nft": "include \"./filter.nft\"\n", "etc/nftables/filter.nft": fx("locked.nft")}, "/etc/nftables/filter.nft:14 the output chain's policy is drop"},
		{"nftables catch-all drop", map[string]string{"etc/nftables.conf": "table ip f {\n\tchain out {\n\t\ttype filter hook output priority 0; policy accept;\n\t\tip daddr 10.0.0.0/8 accept\n\t\tcounter drop\n\t}\n}\n"},
			"/etc/nftables.conf:5 this output rule drops all new outbound traffic"},
		{"firewalld egress policy DROP", map[string]string{"etc/firewalld/policies/lockdown.xml": fx("firewalld-policy-egress-drop.xml")}, "/etc/firewalld/policies/lockdown.xml this firewalld policy's target is DROP"},
		{"firewalld egress policy accepting the wire server", map[string]string{"etc/firewalld/policies/lockdown.xml": fx("firewalld-policy-egress-allow-wireserver.xml")}, ""},
		{"firewalld's own policy", map[string]string{"etc/firewalld/policies/allow-host-ipv6.xml": fx("firewalld-policy-allow-host-ipv6.xml")}, ""},
		// The drop zone drops unsolicited incoming packets; outgoing
		// connections are allowed (its own description says so).
		{"firewalld drop zone", map[string]string{"etc/firewalld/zones/drop.xml": fx("firewalld-zone-drop.xml"), "etc/firewalld/firewalld.conf": "DefaultZone=drop\n"}, ""},
	} {
		o := outcome(t, tree(t, c.files), "NET002")
		if c.want == "" {
			if o.Status != Passed {
				t.Errorf("%s: %s %+v, want pass", c.name, o.Status, o.Findings)
			}
			continue
		}
		if o.Status != Failed || len(o.Findings) != 1 {
			t.Errorf("%s: %s %+v, want one finding", c.name, o.Status, o.Findings)
			continue
		}
		f := o.Findings[0]
		if got := f.Location.String() + " " + f.Message; !strings.HasPrefix(got, strings.SplitN(c.want, " ", 2)[0]) || !strings.Contains(got, strings.SplitN(c.want, " ", 2)[1]) {
			t.Errorf("%s: finding %q, want %q", c.name, got, c.want)
		}
	}
}

// ufw (Ubuntu's firewall) with its default outgoing policy set to deny
// drops the wire server's traffic unless a rule lets it out.
func TestWireServerBlockedByUFW(t *testing.T) {
	fx := func(name string) string { return firewallFixture(t, "ufw/"+name) }
	enable := strings.NewReplacer("ENABLED=no", "ENABLED=yes")
	denyOut := strings.NewReplacer(`DEFAULT_OUTPUT_POLICY="ACCEPT"`, `DEFAULT_OUTPUT_POLICY="DROP"`)
	allowOut := strings.NewReplacer("### RULES ###\n", "### RULES ###\n\n### tuple ### allow tcp any 168.63.129.16 any 0.0.0.0/0 out\n-A ufw-user-output -p tcp -d 168.63.129.16 -j ACCEPT\n")
	stock := map[string]string{"etc/default/ufw": fx("default-ufw"), "etc/ufw/ufw.conf": fx("ufw.conf"), "etc/ufw/before.rules": fx("before.rules"), "etc/ufw/user.rules": fx("user.rules")}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"as shipped", stock, ""},
		{"enabled", with(stock, map[string]string{"etc/ufw/ufw.conf": enable.Replace(fx("ufw.conf"))}), ""},
		{"deny outgoing, not enabled", with(stock, map[string]string{"etc/default/ufw": denyOut.Replace(fx("default-ufw"))}), ""},
		{"enabled, deny outgoing", with(stock, map[string]string{"etc/ufw/ufw.conf": enable.Replace(fx("ufw.conf")), "etc/default/ufw": denyOut.Replace(fx("default-ufw"))}),
			"/etc/default/ufw:15 ufw is enabled and its default outgoing policy is DROP"},
		{"enabled, deny outgoing, wire server allowed", with(stock, map[string]string{"etc/ufw/ufw.conf": enable.Replace(fx("ufw.conf")), "etc/default/ufw": denyOut.Replace(fx("default-ufw")),
			"etc/ufw/user.rules": allowOut.Replace(fx("user.rules"))}), ""},
	} {
		o := outcome(t, tree(t, c.files), "NET002")
		if c.want == "" {
			if o.Status != Passed {
				t.Errorf("%s: %s %+v, want pass", c.name, o.Status, o.Findings)
			}
			continue
		}
		if o.Status != Failed || len(o.Findings) != 1 {
			t.Errorf("%s: %s %+v, want one finding", c.name, o.Status, o.Findings)
			continue
		}
		if f := o.Findings[0]; f.Location.String() != strings.SplitN(c.want, " ", 2)[0] || !strings.Contains(f.Message, strings.SplitN(c.want, " ", 2)[1]) {
			t.Errorf("%s: finding %s %q, want %q", c.name, f.Location, f.Message, c.want)
		}
	}
	if got := strings.Count(firewallFixture(t, "ufw/user.rules"), "### RULES ###\n"); got != 1 {
		t.Fatalf("user.rules has %d RULES markers", got)
	}
}

func FuzzIptablesBlock(f *testing.F) {
	for _, name := range []string{"locked.iptables-save", "allowed.iptables-save", "reject.iptables-save"} {
		f.Add([]byte(firewallFixture(f, name)))
	}
	f.Add([]byte("-P OUTPUT DROP\n-A OUTPUT ! -d 168.63.129.16 -j ACCEPT\n-A OUTPUT -j\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if blk, ok := iptablesBlock(b); ok && (blk.line < 1 || blk.why == "") {
			t.Fatalf("block %+v", blk)
		}
	})
}

func FuzzNftBlock(f *testing.F) {
	for _, name := range []string{"locked.nft", "allowed.nft", "debian-nftables.conf"} {
		f.Add([]byte(firewallFixture(f, name)))
	}
	f.Add([]byte("table inet t { chain c { type filter hook output priority 0; policy drop; ip daddr != { 1.2.3.4, } tcp dport { 80-90 } accept }\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if blk, ok := nftBlock(b); ok && (blk.line < 1 || blk.why == "") {
			t.Fatalf("block %+v", blk)
		}
	})
}

func FuzzFirewalldBlock(f *testing.F) {
	for _, name := range []string{"firewalld-policy-egress-drop.xml", "firewalld-policy-egress-allow-wireserver.xml", "firewalld-policy-allow-host-ipv6.xml"} {
		f.Add([]byte(firewallFixture(f, name)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if blk, ok := firewalldBlock(b); ok && blk.why == "" {
			t.Fatalf("block %+v", blk)
		}
	})
}
