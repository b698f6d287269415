package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// dhcpOptionWireServer is the DHCP option by which Azure names the wire
// server when it is not at DefaultEndpoint.
const dhcpOptionWireServer = 245

// leaseGlobs are where the DHCP clients a Linux guest may run keep their
// leases: dhclient (also as NetworkManager's client), systemd-networkd,
// NetworkManager's internal client and dhcpcd.
var leaseGlobs = []string{
	"/var/lib/dhcp/dhclient*.leases",
	"/var/lib/dhclient/*.lease*",
	"/var/lib/NetworkManager/*.lease",
	"/run/systemd/netif/leases/*",
	"/var/lib/dhcpcd/*.lease",
	"/var/lib/dhcpcd5/*.lease",
	"/var/db/dhcpcd/*.lease",
}

// maxLeaseSize bounds the lease file read; a lease is a few kilobytes and
// dhclient's appended history is rarely more than tens.
const maxLeaseSize = 1 << 20

// Discover returns the wire server's address: the option 245 address of the
// newest lease file under root (a directory standing for /) holding a live
// one, or DefaultEndpoint. source names the lease file, or is empty.
func Discover(root string, now time.Time) (endpoint, source string) {
	var newest time.Time
	for _, g := range leaseGlobs {
		files, _ := filepath.Glob(filepath.Join(root, g))
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil || !fi.Mode().IsRegular() || (source != "" && !fi.ModTime().After(newest)) {
				continue
			}
			data, err := readLimited(f, maxLeaseSize)
			if err != nil {
				continue
			}
			if a, ok := ParseLease(data, now); ok {
				endpoint, source, newest = a.String(), f, fi.ModTime()
			}
		}
	}
	if endpoint == "" {
		return DefaultEndpoint, ""
	}
	return endpoint, source
}

func readLimited(name string, n int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// ParseLease finds the wire server address (DHCP option 245) in a lease
// file of any of the supported clients: a dhcpcd lease is the raw DHCP
// message; systemd-networkd writes OPTION_245=A83F8110; dhclient writes
// `option unknown-245 a8:3f:81:10;` inside lease blocks, of which the last
// unexpired one counts.
func ParseLease(data []byte, now time.Time) (netip.Addr, bool) {
	if a, ok := parseDHCPMessage(data); ok {
		return a, true
	}
	if bytes.Contains(data, []byte("unknown-245")) {
		return parseDhclient(data, now)
	}
	return parseKeyValueLease(data)
}

// parseKeyValueLease reads systemd-networkd's lease format.
func parseKeyValueLease(data []byte) (netip.Addr, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || k != "OPTION_"+strconv.Itoa(dhcpOptionWireServer) {
			continue
		}
		b, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil || len(b) != 4 {
			continue
		}
		return netip.AddrFrom4([4]byte(b)), true
	}
	return netip.Addr{}, false
}

// parseDhclient reads dhclient's lease database the way WALinuxAgent does
// (osutil/default.py, get_endpoint_from_leases_path): a block's option 245
// counts when its expiry is "never" or in the future; the last such wins.
func parseDhclient(data []byte, now time.Time) (netip.Addr, bool) {
	var found, cur netip.Addr
	live := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(strings.TrimSuffix(line, ";"))
		switch {
		case strings.HasPrefix(line, "lease"):
			cur, live = netip.Addr{}, false
		case len(f) >= 2 && f[0] == "expire":
			live = f[1] == "never" || expiresAfter(f[1:], now)
		case len(f) == 3 && f[0] == "option" && f[1] == "unknown-245":
			if a, ok := colonHexIPv4(f[2]); ok {
				cur = a
			}
		case strings.HasPrefix(line, "}"):
			if live && cur.IsValid() {
				found = cur
			}
		}
	}
	return found, found.IsValid()
}

// expiresAfter parses dhclient's `expire W YYYY/MM/DD HH:MM:SS` (UTC).
func expiresAfter(f []string, now time.Time) bool {
	if len(f) != 3 {
		return false
	}
	t, err := time.Parse("2006/01/02 15:04:05", f[1]+" "+f[2])
	return err == nil && t.After(now)
}

// colonHexIPv4 parses "a8:3f:81:10".
func colonHexIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return netip.Addr{}, false
		}
		b[i] = byte(v)
	}
	return netip.AddrFrom4(b), true
}

// The BOOTP message layout (RFC 2131): a fixed 236-byte header, the magic
// cookie, then options as code, length, value.
const (
	bootpHeaderLen = 236
	bootpReply     = 2
	optPad         = 0
	optEnd         = 255
)

var dhcpMagicCookie = []byte{99, 130, 83, 99}

// parseDHCPMessage reads a raw DHCP message, as dhcpcd stores a lease.
func parseDHCPMessage(data []byte) (netip.Addr, bool) {
	if len(data) < bootpHeaderLen+len(dhcpMagicCookie) || data[0] != bootpReply ||
		!bytes.Equal(data[bootpHeaderLen:bootpHeaderLen+len(dhcpMagicCookie)], dhcpMagicCookie) {
		return netip.Addr{}, false
	}
	opts := data[bootpHeaderLen+len(dhcpMagicCookie):]
	for len(opts) > 0 {
		code := opts[0]
		if code == optEnd {
			break
		}
		if code == optPad {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			break
		}
		val := opts[2 : 2+int(opts[1])]
		if code == dhcpOptionWireServer && len(val) == 4 {
			return netip.AddrFrom4([4]byte(val)), true
		}
		opts = opts[2+int(opts[1]):]
	}
	return netip.Addr{}, false
}
