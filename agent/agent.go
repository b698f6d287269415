// Package agent is vhdprep's guest agent as a library: it provisions a VM
// on its first boot, reports Ready to the Azure wire server on every boot,
// and keeps reporting while it runs. cmd/vhdprep-agent is its command.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vhdprep/vhdprep/agent/extension"
	"github.com/vhdprep/vhdprep/agent/firewall"
	"github.com/vhdprep/vhdprep/agent/imds"
	"github.com/vhdprep/vhdprep/agent/kvp"
	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/agent/provision"
	"github.com/vhdprep/vhdprep/agent/resourcedisk"
	"github.com/vhdprep/vhdprep/agent/wire"
	"github.com/vhdprep/vhdprep/internal/pause"
)

// Agent runs provisioning and health reporting.
type Agent struct {
	Config layout.Config
	Prov   *provision.Provisioner
	Wire   *wire.Client
	IMDS   *imds.Client // nil: no fallback when the media is missing
	Log    *slog.Logger
	// ResourceDisk is prepared as configured when the daemon starts (after
	// provisioning, as WALinuxAgent does); nil leaves it alone.
	ResourceDisk *resourcedisk.Disk
	// Extensions runs VM extension handlers (see NewExtensionProcessor);
	// nil leaves them alone. With Config.ExtensionsEnabled off it runs
	// none and reports each failed, saying why.
	Extensions *extension.Processor
	// Firewall guards the wire server, applied (or, with
	// Config.FirewallEnabled off, removed) at each daemon start; nil
	// leaves the system's firewall alone.
	Firewall *firewall.Guard
	// KVP receives provisioning progress and failures for the host (the
	// Hyper-V KVP guest pool); nil writes none.
	KVP *kvp.Writer
	// Version is the agent's version, reported in the status document.
	Version string

	// PollInterval is how often the daemon fetches the goal state (6 s,
	// as WALinuxAgent, when zero). ReportInterval is how often it reports
	// health again when nothing changed (10 min when zero).
	PollInterval   time.Duration
	ReportInterval time.Duration
}

// Outcome says what Provision did.
type Outcome int

// The outcomes of Provision.
const (
	Provisioned        Outcome = iota // this boot provisioned the VM
	AlreadyProvisioned                // the marker names this VM: nothing to do
	ProvisioningOff                   // configured off: only Ready reported
)

func (o Outcome) String() string {
	return [...]string{"provisioned", "already provisioned", "provisioning disabled"}[o]
}

// Provision provisions the VM unless the marker says this VM already was,
// then reports Ready. While it works it reports NotReady/Provisioning; when
// a step fails it reports NotReady/ProvisioningFailed with the reason and
// returns the failure. The marker is written only after every step
// succeeded, so a failed provisioning is tried again at the next boot.
func (a *Agent) Provision(ctx context.Context) (Outcome, error) {
	o, perr, rerr := a.provision(ctx)
	return o, errors.Join(perr, rerr)
}

// provision returns provisioning's own failure apart from the failure to
// report: only the first changes the state the daemon keeps reporting.
func (a *Agent) provision(ctx context.Context) (o Outcome, provErr, reportErr error) {
	if !a.Config.ProvisioningEnabled {
		a.log().Info("provisioning is disabled in the configuration")
		return ProvisioningOff, nil, a.ReportReady(ctx)
	}
	fail := func(err error) (Outcome, error, error) {
		a.log().Error("provisioning failed", "err", err)
		a.hostEvent("ERROR", "provisioning failed: "+err.Error())
		return Provisioned, err, a.report(ctx, failedHealth(err))
	}
	vmID, err := a.Prov.VMID()
	if err != nil {
		return fail(err)
	}
	done, err := a.Prov.IsProvisioned(vmID)
	if err != nil {
		return fail(err)
	}
	if done {
		a.log().Info("VM already provisioned", "vm_id", vmID)
		return AlreadyProvisioned, nil, a.ReportReady(ctx)
	}
	if rec, _ := a.Prov.ProvisionedFor(); rec != "" {
		a.log().Warn("image was provisioned in another VM; provisioning again", "was", rec, "vm_id", vmID)
	}
	a.log().Info("provisioning", "vm_id", vmID)
	if a.KVP != nil {
		a.KVP.VMID = vmID
	}
	a.hostEvent("INFO", "provisioning started by "+a.Version)
	if err := a.report(ctx, wire.Health{State: wire.NotReady, SubStatus: wire.Provisioning, Description: "Starting"}); err != nil {
		// Keep going: provisioning matters more than this report.
		a.log().Warn("reporting NotReady/Provisioning failed", "err", err)
	}
	if g := a.Wire.Current(); g != nil {
		// Before the settings: SSH keys may be given by fingerprint.
		if err := a.SaveCertificates(ctx, g); err != nil {
			return fail(&provision.StepError{Step: "certificates", Err: err})
		}
	}
	s, err := a.Prov.LoadSettings(ctx, a.IMDS)
	if err != nil {
		return fail(err)
	}
	if err := a.Prov.Apply(ctx, s); err != nil {
		return fail(err)
	}
	if err := a.Prov.MarkProvisioned(vmID); err != nil {
		return fail(err)
	}
	// Only now: a provisioning that failed reads the media again next boot.
	a.Prov.EjectMedia(ctx, s.Media)
	a.log().Info("provisioning done", "vm_id", vmID)
	a.hostEvent("INFO", "provisioning done; settings from "+s.Source)
	return Provisioned, nil, a.ReportReady(ctx)
}

func failedHealth(err error) wire.Health {
	return wire.Health{State: wire.NotReady, SubStatus: wire.ProvisioningFailed, Description: err.Error()}
}

// ReportReady fetches the goal state and reports Ready for it.
func (a *Agent) ReportReady(ctx context.Context) error {
	return a.report(ctx, wire.Health{State: wire.Ready})
}

func (a *Agent) report(ctx context.Context, h wire.Health) error {
	if _, err := a.Wire.GoalState(ctx); err != nil {
		return fmt.Errorf("health report: %w", err)
	}
	return a.Wire.ReportHealth(ctx, h)
}

// Daemon provisions if needed and reports, then keeps watching the goal
// state until ctx ends: it reports again when the incarnation changes, when
// ReportInterval has passed, and after a failed report. A provisioning
// failure keeps being reported, so the operator sees it in the portal.
// Extensions are processed beside this loop (see extensionWorker), which
// uploads their status on every poll.
func (a *Agent) Daemon(ctx context.Context) error {
	a.guardWireServer(ctx)
	if _, err := a.Wire.CheckVersion(ctx); errors.Is(err, wire.ErrUnsupportedVersion) {
		return err
	} else if err != nil {
		a.log().Warn("wire server version check failed; going on", "err", err)
	}
	_, perr, rerr := a.provision(ctx)
	if a.ResourceDisk != nil {
		go a.setupResourceDisk(ctx)
	}
	health := wire.Health{State: wire.Ready}
	if perr != nil {
		health = failedHealth(perr)
	}
	reported, lastReport := rerr == nil, time.Now()
	incarnation := ""
	if g := a.Wire.Current(); g != nil {
		incarnation = g.Incarnation
	}
	poll, every := orDefault(a.PollInterval, 6*time.Second), orDefault(a.ReportInterval, 10*time.Minute)
	wait := poll
	var ext *extensionWorker
	var info extension.Agent
	if a.Extensions != nil {
		ext, info = newExtensionWorker(), a.agentInfo()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.runExtensions(ctx, ext, poll)
		}()
		// A command the worker runs ends with ctx; the daemon returns after it.
		defer wg.Wait()
	}
	for {
		if err := pause.For(ctx, wait); err != nil {
			return nil
		}
		if a.Config.MonitorHostName {
			a.Prov.PublishRenamed(ctx)
		}
		g, err := a.Wire.GoalState(ctx)
		if err != nil {
			a.log().Warn("fetching the goal state failed", "err", err)
			wait = min(wait*2, time.Minute)
			continue
		}
		wait = poll
		if ext != nil {
			ext.offer(g)
			a.reportExtensionStatus(ctx, ext, info, health)
		}
		if reported && g.Incarnation == incarnation && time.Since(lastReport) < every {
			continue
		}
		if g.Incarnation != incarnation {
			a.log().Info("new goal state", "incarnation", g.Incarnation)
		}
		incarnation = g.Incarnation
		err = a.Wire.ReportHealth(ctx, health)
		reported, lastReport = err == nil, time.Now()
		if err != nil {
			a.log().Warn("health report failed", "err", err)
		}
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// hostEvent tells the host how provisioning goes, through KVP: it needs
// no network. Failing to write only costs the diagnostics.
func (a *Agent) hostEvent(level, msg string) {
	if a.KVP == nil {
		return
	}
	if err := a.KVP.Event(level, "provisioning", msg); err != nil {
		a.log().Warn("writing to Hyper-V KVP failed", "err", err)
	}
}

// guardWireServer applies the firewall rules before the agent first talks
// to the wire server. A failure is logged: the VM must still report Ready.
func (a *Agent) guardWireServer(ctx context.Context) {
	if a.Firewall == nil {
		return
	}
	if !a.Config.FirewallEnabled {
		if err := a.Firewall.Remove(ctx); err != nil {
			a.log().Warn("removing the wire server's firewall rules failed", "err", err)
		}
		return
	}
	if tool, err := a.Firewall.Apply(ctx); err != nil {
		a.log().Error("the wire server is not guarded", "err", err)
	} else {
		a.log().Info("wire server guarded: only root and DNS may connect", "address", a.Firewall.WireServer, "tool", tool)
	}
}

// setupResourceDisk runs beside health reporting: formatting a large disk
// takes a while, and its failure only costs the disk.
func (a *Agent) setupResourceDisk(ctx context.Context) {
	switch err := a.ResourceDisk.Setup(ctx); {
	case errors.Is(err, resourcedisk.ErrNoResourceDisk):
		a.log().Info("resource disk not set up", "reason", err)
	case err != nil:
		a.log().Error("resource disk", "err", err)
	}
}

func (a *Agent) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}
