//go:build e2e

package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/internal/shell"
)

// dhcpHostNames returns the host names (option 12) the guest's DHCP
// requests carried, in order, from the pcap file QEMU's filter-dump
// writes of the guest's network.
func dhcpHostNames(t *testing.T, pcap string) []string {
	t.Helper()
	b, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatalf("%s is not a little-endian pcap file", pcap)
	}
	var names []string
	for b = b[24:]; len(b) >= 16; {
		n := int(binary.LittleEndian.Uint32(b[8:]))
		if len(b) < 16+n {
			break // QEMU was still writing it
		}
		if name, ok := dhcpHostName(b[16 : 16+n]); ok {
			names = append(names, name)
		}
		b = b[16+n:]
	}
	return names
}

// dhcpHostName reads option 12 of an Ethernet frame holding a DHCP
// request (IPv4, UDP to port 67).
func dhcpHostName(f []byte) (string, bool) {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return "", false
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[9] != 17 || len(ip) < ihl+8 {
		return "", false
	}
	udp := ip[ihl:]
	if binary.BigEndian.Uint16(udp[2:]) != 67 {
		return "", false
	}
	// BOOTP's fixed part is 236 bytes, then the magic cookie, then options.
	bootp := udp[8:]
	if len(bootp) < 240 || binary.BigEndian.Uint32(bootp[236:]) != 0x63825363 {
		return "", false
	}
	for o := bootp[240:]; len(o) >= 2 && o[0] != 255; {
		if o[0] == 0 {
			o = o[1:]
			continue
		}
		l := int(o[1])
		if len(o) < 2+l {
			break
		}
		if o[0] == 12 {
			return string(o[2 : 2+l]), true
		}
		o = o[2+l:]
	}
	return "", false
}

// tableHandle is the kernel's handle of the agent's nftables table, which
// changes whenever the agent applies its rules again; "" when absent.
var tableHandleRE = regexp.MustCompile(`table ip vhdprep-agent \{ # handle (\d+)`)

// checkWireServerGuard proves the agent's firewall in the booted VM: an
// agent restart applies its rules anew, leaving one copy of them; an
// unprivileged user's connection to the wire server goes unanswered,
// while root's gets the wire server's answer.
func checkWireServerGuard(ctx context.Context, t *testing.T, vm *machine, c *guestShell, password string) {
	t.Helper()
	sudo := func(cmd string) string {
		return c.runInput(password+"\n", "sudo -S -p '' sh -c "+shell.Quote(cmd))
	}
	handle := func() string {
		m := tableHandleRE.FindStringSubmatch(sudo("nft -a list table ip vhdprep-agent 2>/dev/null || true"))
		if m == nil {
			return ""
		}
		return m[1]
	}
	before := handle()
	if before == "" {
		t.Fatalf("no nftables table vhdprep-agent in the guest:\n%s", sudo("nft list ruleset"))
	}
	sudo("systemctl restart vhdprep-agent.service")
	vm.waitFor(ctx, "the agent's firewall rules applied again after its restart", func() bool {
		h := handle()
		return h != "" && h != before
	})
	ruleset := sudo("nft list ruleset")
	if n := strings.Count(ruleset, "ip daddr "+wireServerIP); n != 1 {
		t.Errorf("after an agent restart the ruleset holds %d rules for the wire server, want 1:\n%s", n, ruleset)
	}

	// bash's /dev/tcp: the image has no HTTP client, and needs none.
	request := fmt.Sprintf(`timeout 20 bash -c 'exec 3<>/dev/tcp/%s/80 && printf "GET /?comp=versions HTTP/1.0\r\n\r\n" >&3 && head -n 1 <&3'; echo "exit $?"`, wireServerIP)
	if got := c.run(request); !strings.Contains(got, "exit 124") || strings.Contains(got, "HTTP/") {
		t.Errorf("an unprivileged user's request to the wire server was not stopped: %q, want a timeout (exit 124)", got)
	}
	if got := sudo(request); !strings.Contains(got, " 200 OK") || !strings.Contains(got, "exit 0") {
		t.Errorf("root's request to the wire server: %q, want its 200 answer", got)
	}
}
