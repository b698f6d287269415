package provision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/provision/provisiontest"
)

// A route table as /proc/net/route shows it: a default route through eth1
// with a worse metric than eth0's, and eth0's subnet route.
const routes = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
	"eth1\t00000000\t0100000A\t0003\t0\t0\t200\t00000000\t0\t0\t0\n" +
	"eth0\t0004A8C0\t00000000\t0001\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n" +
	"eth0\t00000000\t0104A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"

func TestPrimaryInterface(t *testing.T) {
	p, _ := setup(t)
	if got := p.primaryInterface(); got != "" {
		t.Errorf("no route table: %q", got)
	}
	writeFile(t, p.Root, "proc/net/route", routes)
	if got := p.primaryInterface(); got != "eth0" {
		t.Errorf("primary interface %q, want eth0 (default route, lowest metric)", got)
	}
}

func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// network sets up a VM whose primary interface eth0 (index 2) is managed
// as files says, the machine still named "image".
func network(t *testing.T, files map[string]string, tools ...string) (*Provisioner, *provisiontest.System) {
	t.Helper()
	p, sys := setup(t, append(provisiontest.Debian, tools...)...)
	writeFile(t, p.Root, "proc/net/route", routes)
	writeFile(t, p.Root, "proc/sys/kernel/hostname", "image\n")
	writeFile(t, p.Root, "sys/class/net/eth0/ifindex", "2\n")
	for rel, data := range files {
		writeFile(t, p.Root, rel, data)
	}
	return p, sys
}

// runs lists the network programs run, one "name args" each.
func runs(sys *provisiontest.System) []string {
	var r []string
	for _, c := range sys.Calls() {
		switch c.Name {
		case "networkctl", "nmcli", "dhcpcd", "ifdown", "ifup", "systemctl":
			r = append(r, c.Name+" "+strings.Join(c.Args, " "))
		}
	}
	return r
}

func TestPublishHostname(t *testing.T) {
	debianDhclient := testdata(t, "dhclient.conf")
	autoSend := regexp.MustCompile(`(?m)^send host-name = gethostname\(\);\n`)
	// What a VM provisioned by WALinuxAgent leaves in an image whose
	// dhclient.conf did not send the host name: a fixed old name.
	staleDhclient := autoSend.ReplaceAllString(debianDhclient, "") + `send host-name "oldvm";` + "\n"
	debianDhcpcd := testdata(t, "dhcpcd.conf")
	staleDhcpcd := strings.Replace(debianDhcpcd, "\nhostname\n", "\nhostname oldvm\nhostname_short\n", 1)

	tests := []struct {
		name  string
		files map[string]string
		tools []string
		fail  string // a program that fails
		// conf is the client's configuration file and want what it must
		// hold afterwards ("" : absent).
		conf, want string
		runs       []string
	}{{
		name:  "systemd-networkd",
		files: map[string]string{"run/systemd/netif/links/2": "# This is private data. Do not parse.\nADMIN_STATE=configured\nOPER_STATE=routable\nNETWORK_FILE=/etc/systemd/network/10-eth.network\n"},
		tools: []string{"networkctl", "systemctl"},
		runs:  []string{"networkctl reconfigure eth0"},
	}, {
		name:  "systemd-networkd without reconfigure (before 246)",
		files: map[string]string{"run/systemd/netif/links/2": "ADMIN_STATE=configured\n"},
		tools: []string{"networkctl", "systemctl"},
		fail:  "networkctl",
		runs:  []string{"networkctl reconfigure eth0", "systemctl restart systemd-networkd.service"},
	}, {
		name: "NetworkManager",
		files: map[string]string{
			"run/NetworkManager/devices/2":             "[device]\nmanaged=true\nperm-hw-addr-fake=\nconnection-uuid=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03\n",
			"run/systemd/netif/links/2":                "ADMIN_STATE=unmanaged\n",
			"etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\nONBOOT=yes\nBOOTPROTO=dhcp\nTYPE=Ethernet\nUSERCTL=no\nPEERDNS=yes\nIPV6INIT=no\nDHCP_HOSTNAME=oldvm\n",
		},
		tools: []string{"nmcli"},
		conf:  "etc/sysconfig/network-scripts/ifcfg-eth0",
		want:  "DEVICE=eth0\nONBOOT=yes\nBOOTPROTO=dhcp\nTYPE=Ethernet\nUSERCTL=no\nPEERDNS=yes\nIPV6INIT=no\n",
		runs:  []string{"nmcli connection reload", "nmcli connection up uuid 5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03"},
	}, {
		name: "dhclient of ifupdown, Debian's dhclient.conf",
		files: map[string]string{
			"etc/dhcp/dhclient.conf":   debianDhclient,
			"run/network/ifstate.eth0": "eth0\n",
			"proc/1/cmdline":           "/sbin/init\x00",
			"proc/1/comm":              "systemd\n",
			"proc/412/comm":            "dhclient\n",
			"proc/412/cmdline":         "/sbin/dhclient\x00-4\x00-v\x00-i\x00-pf\x00/run/dhclient.eth0.pid\x00-lf\x00/var/lib/dhcp/dhclient.eth0.leases\x00-I\x00-df\x00/var/lib/dhcp/dhclient6.eth0.leases\x00eth0\x00",
		},
		tools: []string{"systemctl"},
		conf:  "etc/dhcp/dhclient.conf",
		want:  debianDhclient,
		runs:  []string{"systemctl is-active --quiet ifup@eth0.service", "systemctl restart ifup@eth0.service"},
	}, {
		name: "dhclient with an old VM's name, ifupdown without systemd",
		files: map[string]string{
			"etc/dhcp/dhclient.conf":   staleDhclient,
			"run/network/ifstate.eth0": "eth0\n",
			"proc/412/comm":            "dhclient\n",
			"proc/412/cmdline":         "dhclient\x00eth0\x00",
		},
		tools: []string{"ifdown", "ifup"},
		conf:  "etc/dhcp/dhclient.conf",
		want:  autoSend.ReplaceAllString(debianDhclient, "") + "# Azure's DNS learns the VM's name from DHCP (vhdprep-agent).\nsend host-name = gethostname();\n",
		runs:  []string{"ifdown eth0", "ifup eth0"},
	}, {
		name: "dhclient with its own configuration file and none there",
		files: map[string]string{
			"run/network/ifstate.eth0": "eth0\n",
			"proc/412/comm":            "dhclient\n",
			"proc/412/cmdline":         "dhclient\x00-cf\x00/etc/dhclient-eth0.conf\x00eth0\x00",
		},
		tools: []string{"ifdown", "ifup"},
		conf:  "etc/dhclient-eth0.conf",
		want:  "# Azure's DNS learns the VM's name from DHCP (vhdprep-agent).\nsend host-name = gethostname();\n",
		runs:  []string{"ifdown eth0", "ifup eth0"},
	}, {
		name: "dhcpcd, Debian's dhcpcd.conf",
		files: map[string]string{
			"etc/dhcpcd.conf": debianDhcpcd,
			// Another interface's client, then dhcpcd 10 as ps shows it.
			"proc/77/comm":     "dhclient\n",
			"proc/77/cmdline":  "/usr/sbin/dhclient\x00eth1\x00",
			"proc/300/comm":    "dhcpcd\n",
			"proc/300/cmdline": "dhcpcd: [manager] [ip4] [ip6]\x00\x00\x00\x00",
			"proc/301/comm":    "dhcpcd\n",
			"proc/301/cmdline": "dhcpcd: [privileged proxy]\x00",
		},
		tools: []string{"dhcpcd"},
		conf:  "etc/dhcpcd.conf",
		want:  debianDhcpcd,
		runs:  []string{"dhcpcd -n eth0"},
	}, {
		name:  "dhcpcd sending a fixed name",
		files: map[string]string{"etc/dhcpcd.conf": staleDhcpcd, "proc/301/comm": "dhcpcd\n", "proc/301/cmdline": "dhcpcd: eth0 [ip4] [ip6]\x00"},
		tools: []string{"dhcpcd"},
		conf:  "etc/dhcpcd.conf",
		want:  strings.Replace(debianDhcpcd, "\nhostname\n", "\nhostname_short\n", 1) + "# Azure's DNS learns the VM's name from DHCP (vhdprep-agent).\nhostname\n",
		runs:  []string{"dhcpcd -n eth0"},
	}, {
		name:  "no DHCP client",
		files: map[string]string{"proc/1/cmdline": "/sbin/init\x00"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, sys := network(t, tt.files, tt.tools...)
			if tt.fail != "" {
				sys.Fail[tt.fail] = errors.New("unknown command")
			}
			p.publishHostname(context.Background(), "vm-01", true)
			if got := runs(sys); strings.Join(got, "\n") != strings.Join(tt.runs, "\n") {
				t.Errorf("ran %q, want %q", got, tt.runs)
			}
			if tt.conf != "" {
				if got := readFile(t, p.Root, tt.conf); got != tt.want {
					t.Errorf("%s:\n%s\nwant:\n%s", tt.conf, got, tt.want)
				}
			}
			if got := readFile(t, p.Root, PublishedHostnameFile); got != "vm-01" {
				t.Errorf("published host name record %q", got)
			}

			// Published again, nothing to change: no renewal, no edit.
			before := len(sys.Calls())
			p.publishHostname(context.Background(), "vm-01", false)
			if again := sys.Calls()[before:]; len(again) != 0 {
				t.Errorf("an unchanged name renewed the lease: %+v", again)
			}
			if tt.conf != "" {
				if got := readFile(t, p.Root, tt.conf); got != tt.want {
					t.Errorf("%s changed again:\n%s", tt.conf, got)
				}
			}
		})
	}
}

// Provisioning publishes the host name right after setting it, and only
// when the name changed: a VM booted with its name sent it at boot.
func TestApplyPublishesHostname(t *testing.T) {
	links := map[string]string{"run/systemd/netif/links/2": "ADMIN_STATE=configured\n"}
	p, sys := network(t, links, "networkctl", "systemctl")
	if err := p.Apply(context.Background(), settings()); err != nil {
		t.Fatal(err)
	}
	calls := sys.Calls()
	if got := strings.Join(runs(sys), "\n"); !strings.HasPrefix(got, "networkctl reconfigure eth0\n") {
		t.Errorf("networkd not reconfigured first: %q", got)
	}
	if calls[0].Name != "networkctl" {
		t.Errorf("the lease was renewed after %s, not right after the host name was set", calls[0].Name)
	}

	p, sys = network(t, links, "networkctl", "systemctl")
	writeFile(t, p.Root, "proc/sys/kernel/hostname", settings().HostName+"\n")
	if err := p.Apply(context.Background(), settings()); err != nil {
		t.Fatal(err)
	}
	for _, c := range sys.Calls() {
		if c.Name == "networkctl" {
			t.Errorf("renewed the lease for the name the VM booted with: %+v", c)
		}
	}
}

// A VM renamed after provisioning publishes its new name, once; a VM with
// no record yet only records the name its boot sent.
func TestPublishRenamed(t *testing.T) {
	p, sys := network(t, map[string]string{"run/systemd/netif/links/2": "ADMIN_STATE=configured\n"}, "networkctl")
	p.PublishRenamed(context.Background())
	if got := readFile(t, p.Root, PublishedHostnameFile); got != "image" || len(sys.Calls()) != 0 {
		t.Errorf("no record yet: recorded %q, ran %+v", got, sys.Calls())
	}
	writeFile(t, p.Root, "proc/sys/kernel/hostname", "renamed\n")
	p.PublishRenamed(context.Background())
	p.PublishRenamed(context.Background())
	if got := readFile(t, p.Root, PublishedHostnameFile); got != "renamed" {
		t.Errorf("record %q after a rename", got)
	}
	if got := runs(sys); strings.Join(got, "\n") != "networkctl reconfigure eth0" {
		t.Errorf("after a rename ran %q, want one networkctl reconfigure eth0", got)
	}
}
