package provision

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// PublishedHostnameFile is WALinuxAgent's record of the host name it last
// published; other tools read it.
const PublishedHostnameFile = WaagentDir + "/published_hostname"

// publishHostname makes the DHCP client of the primary interface send the
// host name and renews the lease, as WALinuxAgent's publish_hostname does:
// Azure's DNS learns a VM's name from its DHCP requests, so without this
// VMs in a VNet resolve each other only by the names they booted with. The
// lease is renewed only when the name or the client's configuration
// changed, since renewing interrupts the network. Nothing here fails
// provisioning: the VM works without it, and the log says what went wrong.
func (p *Provisioner) publishHostname(ctx context.Context, name string, changed bool) {
	p.recordPublished(name)
	ifname := p.primaryInterface()
	if ifname == "" {
		p.log().Warn("host name not published: no default route, so no primary interface")
		return
	}
	c := p.dhcpClient(ifname)
	if c.kind == "" {
		p.log().Warn("host name not published: no DHCP client known to manage the interface", "interface", ifname)
		return
	}
	reconfigured, err := p.configureDHCP(c)
	if err != nil {
		p.log().Warn("configuring the DHCP client to send the host name failed", "client", c.kind, "err", err)
	}
	if !changed && !reconfigured {
		p.log().Info("host name already published at boot", "client", c.kind, "interface", ifname)
		return
	}
	if err := p.renewLease(ctx, c, reconfigured); err != nil {
		p.log().Warn("renewing the DHCP lease to publish the host name failed", "client", c.kind, "interface", ifname, "err", err)
		return
	}
	p.log().Info("host name published through DHCP", "host", name, "client", c.kind, "interface", ifname)
}

// PublishRenamed publishes the running host name when it is not the one
// last published, as WALinuxAgent's Provisioning.MonitorHostName does, so
// a VM renamed after provisioning (hostnamectl) is found by its new name.
// With no record yet it only records the name: the boot's DHCP request
// sent it.
func (p *Provisioner) PublishRenamed(ctx context.Context) {
	name := p.runningHostname()
	if name == "" {
		return
	}
	rec, err := p.readFile(PublishedHostnameFile, 256)
	if os.IsNotExist(err) {
		p.recordPublished(name)
		return
	}
	if err != nil || strings.TrimSpace(string(rec)) == name {
		return
	}
	p.log().Info("the host name changed; publishing it", "was", strings.TrimSpace(string(rec)), "host", name)
	p.publishHostname(ctx, name, true)
}

// recordPublished writes WALinuxAgent's record of the published name.
func (p *Provisioner) recordPublished(name string) {
	err := p.mkdirAll(WaagentDir, 0o700)
	if err == nil {
		err = p.writeFile(PublishedHostnameFile, []byte(name), 0o644)
	}
	if err != nil {
		p.log().Warn("writing the published host name record failed", "err", err)
	}
}

// runningHostname is the kernel's host name, "" when unknown.
func (p *Provisioner) runningHostname() string {
	b, err := p.readFile("/proc/sys/kernel/hostname", 256)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// primaryInterface is the interface of the default route with the lowest
// metric, as WALinuxAgent picks it from /proc/net/route.
func (p *Provisioner) primaryInterface() string {
	b, err := p.readFile("/proc/net/route", 1<<20)
	if err != nil {
		return ""
	}
	best, bestMetric := "", -1
	for i, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if i == 0 || len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		flags, err1 := strconv.ParseUint(f[3], 16, 32)
		metric, err2 := strconv.Atoi(f[6])
		if err1 != nil || err2 != nil || flags&1 == 0 { // RTF_UP
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	return best
}

// dhcpClient says which DHCP client manages an interface.
type dhcpClient struct {
	kind   string // "NetworkManager", "systemd-networkd", "dhclient", "dhcpcd"; "" for none
	ifname string
	// conn is NetworkManager's active connection's UUID.
	conn string
	// conf is the configuration file the running dhclient or dhcpcd was
	// given with -cf or -f, "" for its default.
	conf string
}

// dhcpClient finds the DHCP client of ifname from the state the network
// managers keep in /run and from the processes running: NetworkManager
// first, since it may run dhclient itself.
func (p *Provisioner) dhcpClient(ifname string) dhcpClient {
	c := dhcpClient{ifname: ifname}
	if idx, err := p.readFile("/sys/class/net/"+ifname+"/ifindex", 64); err == nil {
		n := strings.TrimSpace(string(idx))
		if st := p.keyValues("/run/NetworkManager/devices/" + n); st["managed"] == "true" {
			c.kind, c.conn = "NetworkManager", st["connection-uuid"]
			return c
		}
		if st := p.keyValues("/run/systemd/netif/links/" + n); st["ADMIN_STATE"] == "configured" || st["ADMIN_STATE"] == "configuring" {
			c.kind = "systemd-networkd"
			return c
		}
	}
	procs, _ := os.ReadDir(p.path("/proc"))
	for _, e := range procs {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := p.readFile("/proc/"+e.Name()+"/comm", 64)
		kind := strings.TrimSpace(string(comm))
		if err != nil || kind != "dhclient" && kind != "dhcpcd" {
			continue
		}
		b, err := p.readFile("/proc/"+e.Name()+"/cmdline", 1<<16)
		if err != nil {
			continue
		}
		// dhcpcd 10 rewrites its command line as a title, one string:
		// "dhcpcd: [manager] [ip4] [ip6]", "dhcpcd: eth0 [ip4]".
		argv := strings.FieldsFunc(string(b), func(r rune) bool { return r == 0 || r == ' ' })
		if len(argv) == 0 {
			continue
		}
		confFlag := map[string]string{"dhclient": "-cf", "dhcpcd": "-f"}[kind]
		conf, named, others := "", false, false
		for i := 1; i < len(argv); i++ {
			a := argv[i]
			switch {
			case a == confFlag && i+1 < len(argv):
				conf = argv[i+1]
				i++
			case strings.HasPrefix(a, "-"), strings.HasPrefix(a, "["): // another option
			case a == ifname:
				named = true
			case !strings.HasPrefix(a, "/"):
				others = true
			}
		}
		// A client given no interface (paths are options' values)
		// serves them all.
		if named || !others {
			c.kind, c.conf = kind, conf
			return c
		}
	}
	return c
}

// keyValues reads a KEY=VALUE state file; a missing one is empty.
func (p *Provisioner) keyValues(abs string) map[string]string {
	m := map[string]string{}
	b, err := p.readFile(abs, 1<<16)
	if err != nil {
		return m
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			m[k] = v
		}
	}
	return m
}

// configureDHCP makes the client's configuration send the host name and
// reports whether it changed a file. systemd-networkd and NetworkManager
// send it by default. What they need is to lose a fixed name an earlier
// agent left: WALinuxAgent writes the VM's name into dhclient.conf and,
// on Red Hat, into the interface's DHCP_HOSTNAME, and a captured image
// keeps sending that old name. The clients are told to send the running
// host name, not a copy of it, so a later rename needs no edit.
func (p *Provisioner) configureDHCP(c dhcpClient) (bool, error) {
	switch c.kind {
	case "dhclient":
		conf := c.conf
		if conf == "" {
			conf = p.firstExisting("/etc/dhcp/dhclient.conf", "/etc/dhcp3/dhclient.conf", "/etc/dhclient.conf")
		}
		if conf == "" {
			conf = "/etc/dhcp/dhclient.conf"
		}
		return p.editConf(conf, dhclientSendsHostname, dhclientHostnameLine, "send host-name = gethostname();")
	case "dhcpcd":
		conf := c.conf
		if conf == "" {
			conf = "/etc/dhcpcd.conf"
		}
		return p.editConf(conf, dhcpcdSendsHostname, dhcpcdHostnameLine, "hostname")
	case "NetworkManager":
		// NetworkManager reads DHCP_HOSTNAME from Red Hat's ifcfg files.
		ifcfg := "/etc/sysconfig/network-scripts/ifcfg-" + c.ifname
		b, err := p.readFile(ifcfg, 1<<20)
		if err != nil || !ifcfgHostnameLine.Match(b) {
			return false, nil
		}
		return true, p.writeFile(ifcfg, ifcfgHostnameLine.ReplaceAll(b, nil), 0o644)
	}
	return false, nil
}

var (
	// dhclient.conf sends the running host name already.
	dhclientSendsHostname = regexp.MustCompile(`(?m)^[^#\n]*\bsend[ \t]+host-name[ \t]*=[ \t]*gethostname[ \t]*\([ \t]*\)`)
	// Any other host-name sent: a fixed name, likely an old VM's.
	dhclientHostnameLine = regexp.MustCompile(`(?m)^[ \t]*send[ \t]+host-name\b.*$\n?`)
	// dhcpcd's bare hostname option sends the running host name; with an
	// argument it sends that fixed name.
	dhcpcdSendsHostname = regexp.MustCompile(`(?m)^[ \t]*hostname[ \t]*$`)
	dhcpcdHostnameLine  = regexp.MustCompile(`(?m)^[ \t]*hostname([ \t].*)?$\n?`)
	ifcfgHostnameLine   = regexp.MustCompile(`(?m)^[ \t]*DHCP_HOSTNAME=.*$\n?`)
)

// editConf leaves conf alone when ok matches it; otherwise it removes the
// lines stale matches and appends line. A missing file is created.
func (p *Provisioner) editConf(conf string, ok, stale *regexp.Regexp, line string) (bool, error) {
	b, err := p.readFile(conf, 1<<20)
	if err != nil && !os.IsNotExist(err) {
		return false, err
	}
	if ok.Match(b) {
		return false, nil
	}
	b = stale.ReplaceAll(b, nil)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	b = fmt.Appendf(b, "# Azure's DNS learns the VM's name from DHCP (vhdprep-agent).\n%s\n", line)
	if err := p.mkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return false, err
	}
	return true, p.writeFile(conf, b, 0o644)
}

func (p *Provisioner) firstExisting(paths ...string) string {
	for _, abs := range paths {
		if _, err := os.Stat(p.path(abs)); err == nil {
			return abs
		}
	}
	return ""
}

// renewLease makes the client ask for a lease again with the current host
// name. systemd-networkd's renew keeps sending the name its DHCP client
// was made with (systemd issue 23244), so the link is reconfigured, or
// networkd restarted as WALinuxAgent does on Ubuntu where networkctl has
// no reconfigure. dhclient has no renew command: ifupdown's interface is
// brought down and up, as WALinuxAgent does, through systemd's units when
// they run it so the new dhclient stays in their cgroup.
func (p *Provisioner) renewLease(ctx context.Context, c dhcpClient, reconfigured bool) error {
	run := func(name string, args ...string) error {
		_, err := p.Sys.Run(ctx, name, args, nil)
		return err
	}
	switch c.kind {
	case "NetworkManager":
		if reconfigured {
			if err := run("nmcli", "connection", "reload"); err != nil {
				return err
			}
		}
		if c.conn != "" {
			return run("nmcli", "connection", "up", "uuid", c.conn)
		}
		return run("nmcli", "device", "connect", c.ifname)
	case "systemd-networkd":
		if err := run("networkctl", "reconfigure", c.ifname); err != nil {
			p.log().Info("networkctl reconfigure failed; restarting systemd-networkd", "err", err)
			return run("systemctl", "restart", "systemd-networkd.service")
		}
		return nil
	case "dhcpcd":
		// -n rebinds and reads the configuration again.
		return run("dhcpcd", "-n", c.ifname)
	case "dhclient":
		if _, err := os.Stat(p.path("/run/network/ifstate." + c.ifname)); err != nil {
			return fmt.Errorf("dhclient on %s was not started by ifupdown, and dhclient cannot be told to renew: the name goes out at its next renewal", c.ifname)
		}
		if _, err := p.Sys.LookPath("systemctl"); err == nil {
			unit := "ifup@" + c.ifname + ".service"
			if run("systemctl", "is-active", "--quiet", unit) != nil {
				unit = "networking.service"
			}
			return run("systemctl", "restart", unit)
		}
		if err := run("ifdown", c.ifname); err != nil {
			return err
		}
		return run("ifup", c.ifname)
	}
	return nil
}
