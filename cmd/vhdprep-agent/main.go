// Command vhdprep-agent is vhdprep's guest agent for Azure: it provisions
// the VM on its first boot and reports Ready to the wire server.
//
//	vhdprep-agent version        print the version
//	vhdprep-agent status         wire server, VM ID, provisioning state, goal state
//	vhdprep-agent provision      provision if this VM was not, then report Ready
//	vhdprep-agent report-ready   report Ready for the current goal state
//	vhdprep-agent daemon         provision if needed, report, keep reporting
//
// It reads /etc/vhdprep-agent.conf (see layout.DefaultConfigText) and logs to
// standard error (the journal under systemd) and /var/log/vhdprep-agent.log.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vhdprep/vhdprep/agent"
	"github.com/vhdprep/vhdprep/agent/firewall"
	"github.com/vhdprep/vhdprep/agent/imds"
	"github.com/vhdprep/vhdprep/agent/kvp"
	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/agent/provision"
	"github.com/vhdprep/vhdprep/agent/resourcedisk"
	"github.com/vhdprep/vhdprep/agent/wire"
)

// version is set at build time with -ldflags '-X main.version=...'.
var version = "dev"

const (
	logFile    = "/var/log/vhdprep-agent.log"
	maxLogSize = 10 << 20 // moved to .1 when a write would pass it
)

// Exit codes, as vhdprep's: 0 success, 1 the job failed, 2 bad usage.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: vhdprep-agent [--root DIR] COMMAND
commands:
  version        print the version
  status         show the wire server, VM ID, provisioning state and goal state
  provision      provision this VM unless it was, then report Ready
  report-ready   report Ready for the current goal state
  daemon         provision if needed, report Ready, keep reporting (the service)
`)
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vhdprep-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr) }
	root := fs.String("root", "/", "the system to act on (its files, DHCP leases and configuration); / except in tests")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		usage(stderr)
		return exitUsage
	}
	cmd := fs.Arg(0)
	if cmd == "version" {
		fmt.Fprintln(stdout, "vhdprep-agent", version)
		return exitOK
	}
	switch cmd {
	case "status", "provision", "report-ready", "daemon":
	default:
		fmt.Fprintf(stderr, "vhdprep-agent: unknown command %q\n", cmd)
		usage(stderr)
		return exitUsage
	}

	cfg, problems := loadConfig(*root)
	log, closeLog := newLogger(*root, cfg.LogLevel, stderr, cmd != "status")
	defer closeLog()
	for _, p := range problems {
		log.Warn("configuration", "problem", p)
	}
	endpoint, source := wire.Discover(*root, time.Now())
	a := &agent.Agent{
		Config:       cfg,
		Prov:         &provision.Provisioner{Root: *root, Sys: provision.Host{}, Log: log},
		Wire:         wire.New(endpoint, wire.Options{AgentName: "vhdprep-agent/" + version, Log: log}),
		IMDS:         &imds.Client{},
		Log:          log,
		ResourceDisk: &resourcedisk.Disk{Root: *root, Sys: provision.Host{}, Log: log, Config: cfg.ResourceDisk()},
	}
	a.Version = version
	a.KVP = &kvp.Writer{Path: filepath.Join(*root, kvp.PoolFile), Source: "vhdprep-agent-" + version}
	if cmd == "provision" || cmd == "daemon" {
		if err := kvp.TruncateStale(a.KVP.Path, bootTime()); err != nil {
			log.Warn("Hyper-V KVP", "err", err)
		}
	}
	if addr, err := netip.ParseAddr(endpoint); err == nil && *root == "/" {
		// Only on the system itself: --root names a test's tree.
		a.Firewall = firewall.New(provision.Host{}, addr)
	}
	a.Extensions = agent.NewExtensionProcessor(*root, a.Wire, log)
	a.Extensions.Limits.Enable = cfg.ExtensionsEnableTimeout
	log.Debug("wire server", "endpoint", endpoint, "lease", source)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "status":
		return status(ctx, a, endpoint, source, stdout)
	case "provision":
		ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
		defer cancel()
		var o agent.Outcome
		if o, err = a.Provision(ctx); err == nil {
			log.Info("done", "outcome", o)
		}
	case "report-ready":
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		err = a.ReportReady(ctx)
	case "daemon":
		log.Info("vhdprep-agent starting", "version", version, "wire_server", endpoint)
		err = a.Daemon(ctx)
	}
	if err != nil {
		log.Error(cmd+" failed", "err", err)
		return exitFail
	}
	return exitOK
}

// bootTime is when the system booted (now, when the uptime is unknown:
// nothing is then older than the boot).
func bootTime() time.Time {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return time.Now()
	}
	return time.Now().Add(-time.Duration(si.Uptime) * time.Second)
}

// loadConfig reads the configuration file; a missing file means defaults.
func loadConfig(root string) (layout.Config, []error) {
	b, err := os.ReadFile(filepath.Join(root, layout.ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return layout.DefaultConfig(), nil
	}
	if err != nil {
		return layout.DefaultConfig(), []error{err}
	}
	return layout.ParseConfig(b)
}

// newLogger logs to stderr and, when toFile, also to the log file; a log
// file that cannot be opened only costs the file.
func newLogger(root string, level slog.Level, stderr io.Writer, toFile bool) (*slog.Logger, func()) {
	opts := &slog.HandlerOptions{Level: level}
	w, closeFn := stderr, func() {}
	var ferr error
	if toFile {
		f, err := openLogFile(filepath.Join(root, logFile), maxLogSize)
		if err == nil {
			w, closeFn = io.MultiWriter(stderr, f), func() { f.Close() }
		}
		ferr = err
	}
	log := slog.New(slog.NewTextHandler(w, opts))
	if ferr != nil {
		log.Warn("cannot write the log file; logging to stderr only", "err", ferr)
	}
	return log, closeFn
}

func status(ctx context.Context, a *agent.Agent, endpoint, source string, w io.Writer) int {
	code := exitOK
	fmt.Fprintln(w, "vhdprep-agent", version)
	if source == "" {
		source = "the default"
	} else {
		source = "DHCP option 245 in " + source
	}
	fmt.Fprintf(w, "wire server:  %s (%s)\n", endpoint, source)
	fmt.Fprintf(w, "provisioning: %s\n", map[bool]string{true: "enabled", false: "disabled"}[a.Config.ProvisioningEnabled])
	vmID, err := a.Prov.VMID()
	if err != nil {
		fmt.Fprintf(w, "VM ID:        unknown (%v)\n", err)
		code = exitFail
	} else {
		fmt.Fprintf(w, "VM ID:        %s\n", vmID)
	}
	rec, err := a.Prov.ProvisionedFor()
	switch {
	case err != nil:
		fmt.Fprintf(w, "provisioned:  unknown (%v)\n", err)
		code = exitFail
	case rec == "":
		fmt.Fprintln(w, "provisioned:  no")
	default:
		if ok, _ := a.Prov.IsProvisioned(vmID); ok {
			fmt.Fprintln(w, "provisioned:  yes, this VM")
		} else {
			fmt.Fprintf(w, "provisioned:  in another VM (%s); the next boot provisions again\n", rec)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	g, err := a.Wire.GoalState(ctx)
	if err != nil {
		fmt.Fprintf(w, "goal state:   unreachable (%v)\n", err)
		return exitFail
	}
	fmt.Fprintf(w, "goal state:   incarnation %s, container %s, role instance %s\n", g.Incarnation, g.ContainerID, g.InstanceID)
	return code
}
