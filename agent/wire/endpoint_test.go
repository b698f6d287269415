package wire

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// A dhclient lease database as Ubuntu 18.04 writes it, with an expired
// older lease naming another address.
const dhclientLeases = `lease {
  interface "eth0";
  fixed-address 10.0.0.4;
  option unknown-245 a8:3f:81:11;
  renew 1 2020/01/01 00:00:00;
  expire 1 2020/01/01 01:00:00;
}
lease {
  interface "eth0";
  fixed-address 10.0.0.4;
  server-name "RD000D3A3382E8";
  option subnet-mask 255.255.255.0;
  option dhcp-lease-time 4294967295;
  option routers 10.0.0.1;
  option unknown-245 a8:3f:81:10;
  option dhcp-server-identifier 168.63.129.16;
  option domain-name "reddog.microsoft.com";
  renew 4 2136/07/10 07:23:49;
  rebind 4 2136/07/10 07:23:49;
  expire 4 2136/07/10 07:23:49;
}
`

const networkdLease = `# This is private data. Do not parse.
ADDRESS=10.0.0.4
NETMASK=255.255.255.0
ROUTER=10.0.0.1
SERVER_ADDRESS=168.63.129.16
OPTION_245=A83F8110
`

// dhcpMessage builds a DHCPACK as dhcpcd stores it, with the given options.
func dhcpMessage(opts ...byte) []byte {
	b := make([]byte, bootpHeaderLen)
	b[0] = bootpReply
	b = append(b, dhcpMagicCookie...)
	return append(append(b, opts...), optEnd)
}

func TestParseLease(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"dhclient", "168.63.129.16", []byte(dhclientLeases)},
		{"dhclient never expires", "168.63.129.17", []byte("lease {\n option unknown-245 a8:3f:81:11;\n expire never;\n}\n")},
		{"dhclient expired", "", []byte("lease {\n option unknown-245 a8:3f:81:11;\n expire 1 2020/01/01 00:00:00;\n}\n")},
		{"dhclient no expiry", "", []byte("lease {\n option unknown-245 a8:3f:81:11;\n}\n")},
		{"dhclient bad hex", "", []byte("lease {\n option unknown-245 a8:3f:81;\n expire never;\n}\n")},
		{"networkd", "168.63.129.16", []byte(networkdLease)},
		{"networkd short", "", []byte("OPTION_245=A83F81\n")},
		{"dhcpcd", "168.63.129.16", dhcpMessage(optPad, 1, 4, 255, 255, 255, 0, 245, 4, 168, 63, 129, 16)},
		{"dhcpcd without 245", "", dhcpMessage(1, 4, 255, 255, 255, 0)},
		{"dhcpcd truncated option", "", dhcpMessage(245, 40, 1, 2)},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := ParseLease(tc.data, now)
			got := ""
			if ok {
				got = a.String()
			}
			if got != tc.want {
				t.Errorf("ParseLease = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDiscover(t *testing.T) {
	root := t.TempDir()
	if ep, src := Discover(root, now); ep != DefaultEndpoint || src != "" {
		t.Errorf("no leases: %s from %q", ep, src)
	}
	write := func(rel string, data []byte, mtime time.Time) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := write("var/lib/dhcp/dhclient.eth0.leases", []byte(dhclientLeases), now.Add(-time.Hour))
	if ep, src := Discover(root, now); ep != "168.63.129.16" || src != old {
		t.Errorf("dhclient: %s from %q", ep, src)
	}
	newer := write("run/systemd/netif/leases/2", []byte("OPTION_245=0A000005\n"), now)
	if ep, src := Discover(root, now); ep != "10.0.0.5" || src != newer {
		t.Errorf("newest lease should win: %s from %q", ep, src)
	}
	write("var/lib/dhcpcd/eth0.lease", dhcpMessage(245, 4, 10, 0, 0, 6), now.Add(time.Minute))
	if ep, _ := Discover(root, now); ep != "10.0.0.6" {
		t.Errorf("dhcpcd: %s", ep)
	}
	write("var/lib/NetworkManager/internal-x-eth0.lease", []byte("ADDRESS=10.0.0.4\n"), now.Add(time.Hour))
	if ep, _ := Discover(root, now); ep != "10.0.0.6" {
		t.Errorf("a lease without option 245 must not hide one with it: %s", ep)
	}
}

func FuzzParseLease(f *testing.F) {
	f.Add([]byte(dhclientLeases))
	f.Add([]byte(networkdLease))
	f.Add(dhcpMessage(245, 4, 168, 63, 129, 16))
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, ok := ParseLease(data, now); ok && !a.Is4() {
			t.Fatalf("ParseLease returned %v", a)
		}
	})
}
