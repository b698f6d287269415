package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vhdprep/vhdprep/agent/extconf"
	"github.com/vhdprep/vhdprep/agent/extension"
	"github.com/vhdprep/vhdprep/agent/layout"
	"github.com/vhdprep/vhdprep/agent/wire"
	"github.com/vhdprep/vhdprep/internal/pause"
)

// maxArtifactsProfile bounds the InVMArtifactsProfileBlob document.
const maxArtifactsProfile = 1 << 20

// extensionWorker processes the extensions of goal states beside the
// daemon loop, one goal state at a time, so that a handler command running
// for minutes stops neither goal state polling nor health and status
// reports. A goal state that arrives meanwhile waits for the running one,
// as in WALinuxAgent; of several, only the newest.
type extensionWorker struct {
	next chan *wire.GoalState // capacity 1: the newest goal state not yet taken

	mu                sync.Mutex
	blobURL, blobType string // where status goes
	goalStateError    string // why the last ExtensionsConfig could not be used
}

func newExtensionWorker() *extensionWorker {
	return &extensionWorker{next: make(chan *wire.GoalState, 1)}
}

// offer hands g to the worker, replacing a goal state it has not taken
// yet. Only the daemon loop offers, so the send never blocks.
func (w *extensionWorker) offer(g *wire.GoalState) {
	select {
	case <-w.next:
	default:
	}
	w.next <- g
}

// setTarget records the status blob of a usable ExtensionsConfig; failed
// records why the last one was unusable, keeping the blob.
func (w *extensionWorker) setTarget(blobURL, blobType string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.blobURL, w.blobType, w.goalStateError = blobURL, blobType, ""
}

func (w *extensionWorker) failed(why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.goalStateError = why
}

func (w *extensionWorker) target() (blobURL, blobType, goalStateError string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.blobURL, w.blobType, w.goalStateError
}

// extensionState is what the worker keeps between goal states.
type extensionState struct {
	incarnation string      // the goal state last processed; "" to process the next one
	failures    uint        // failed fetches in a row, for the backoff
	lastConfig  [32]byte    // SHA-256 of the ExtensionsConfig last processed
	held        *heldConfig // an ExtensionsConfig waiting for its hold to lift
}

// heldConfig is an ExtensionsConfig read but not yet processed because the
// InVMArtifactsProfileBlob says onHold.
type heldConfig struct {
	incarnation string
	cfg         *extconf.Config
	sum         [32]byte
}

// runExtensions is the worker's loop, until ctx ends. After a failure to
// fetch what a goal state needs it waits longer each time before taking
// the next.
func (a *Agent) runExtensions(ctx context.Context, w *extensionWorker, poll time.Duration) {
	var st extensionState
	for {
		var g *wire.GoalState
		select {
		case <-ctx.Done():
			return
		case g = <-w.next:
		}
		if err := a.handleExtensions(ctx, g, &st, w); err != nil {
			a.log().Warn("extensions", "err", err)
			st.failures++
			if pause.For(ctx, min(poll<<min(st.failures, 10), time.Minute)) != nil {
				return
			}
			continue
		}
		st.failures = 0
	}
}

// agentInfo describes the agent and the OS (ID and VERSION_ID of
// os-release, as WALinuxAgent's DISTRO_NAME and DISTRO_VERSION).
func (a *Agent) agentInfo() extension.Agent {
	host, _ := os.Hostname()
	info := extension.Agent{Name: wire.DefaultAgentName, Version: a.Version, ComputerName: host, OSName: runtime.GOOS}
	root := "/"
	if a.Prov != nil {
		root = a.Prov.Root
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/os-release")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, "=")
			v = strings.Trim(v, `"'`)
			switch k {
			case "ID":
				info.OSName = v
			case "VERSION_ID":
				info.OSVersion = v
			}
		}
	}
	return info
}

// NewExtensionProcessor returns the processor the daemon runs handlers
// with, on root's /var/lib/waagent and /var/log/azure, downloading through
// the HostGAPlugin of w when direct downloads fail.
func NewExtensionProcessor(root string, w *wire.Client, log *slog.Logger) *extension.Processor {
	dirs := extension.Dirs{Lib: filepath.Join(root, extension.DefaultDirs.Lib), Log: filepath.Join(root, extension.DefaultDirs.Log)}
	p := &extension.Processor{Dirs: dirs, WireAddress: w.Endpoint(), Limits: extension.DefaultLimits, Log: log, SystemdRun: extension.SystemdRun(root)}
	p.Fetch = &extension.Fetcher{
		HTTP: &http.Client{Timeout: 10 * time.Minute},
		ViaHostPlugin: func(ctx context.Context, url string) (*http.Request, error) {
			g := w.Current()
			if g == nil {
				return nil, errors.New("no goal state for the HostGAPlugin headers")
			}
			return w.ArtifactRequest(ctx, g, url)
		},
		Refresh: func(ctx context.Context) error {
			_, err := w.GoalState(ctx)
			return err
		},
	}
	return p
}

// handleExtensions processes the extensions of goal state g once per
// incarnation: certificates first (their .crt/.prv are what handlers
// decrypt protectedSettings with), then ExtensionsConfig. It returns an
// error when the next loop should try again sooner than a new incarnation.
func (a *Agent) handleExtensions(ctx context.Context, g *wire.GoalState, st *extensionState, w *extensionWorker) error {
	if g.Incarnation == st.incarnation || g.ExtensionsConfig == "" {
		return nil
	}
	held := st.held
	if held == nil || held.incarnation != g.Incarnation {
		if !a.Config.ExtensionsEnabled {
			return a.refuseExtensions(ctx, g, st, w)
		}
		if err := a.SaveCertificates(ctx, g); err != nil {
			// Handlers without protected settings still run; the others fail
			// and say so in their status.
			a.log().Error("certificates for extensions", "err", err)
		}
		doc, err := a.Wire.ExtensionsConfig(ctx, g)
		if err != nil {
			return fmt.Errorf("extensions of incarnation %s: %w", g.Incarnation, err)
		}
		// A new incarnation can leave the extensions as they were (new
		// certificates, a host change): WALinuxAgent processes extensions only
		// when their goal state changed, and so does this.
		sum := sha256.Sum256(doc)
		if sum == st.lastConfig {
			st.incarnation, st.held = g.Incarnation, nil
			a.log().Debug("extensions unchanged", "incarnation", g.Incarnation)
			return nil
		}
		cfg, err := extconf.Parse(doc)
		if cfg == nil {
			st.incarnation, st.held = g.Incarnation, nil
			w.failed(err.Error())
			a.log().Error("extensions goal state unusable", "incarnation", g.Incarnation, "err", err)
			return nil
		}
		if err != nil {
			a.log().Warn("some extension handlers are invalid", "err", err)
		}
		w.setTarget(cfg.StatusUploadBlob, cfg.StatusBlobType)
		held = &heldConfig{incarnation: g.Incarnation, cfg: cfg, sum: sum}
	}
	// The hold is read again on every loop, as WALinuxAgent does: it can
	// lift without a new incarnation.
	if a.onHold(ctx, held.cfg) {
		if st.held != held {
			a.log().Info("extensions on hold", "incarnation", g.Incarnation)
		}
		st.held = held
		return nil
	}
	st.held = nil
	cfg, sum := held.cfg, held.sum
	// The daemon loop keeps fetching goal states meanwhile.
	a.Extensions.Changed = func() bool {
		n := a.Wire.Current()
		return n != nil && n.Incarnation != g.Incarnation
	}
	a.log().Info("processing extensions", "incarnation", g.Incarnation, "handlers", len(cfg.Plugins))
	switch err := a.Extensions.Process(ctx, cfg); {
	case errors.Is(err, extension.ErrGoalStateChanged):
		a.log().Info("goal state changed while processing extensions; processing the new one")
		return nil // incarnation left unset: the next loop takes the new one
	case err != nil:
		a.log().Error("extensions", "incarnation", g.Incarnation, "err", err)
	}
	st.incarnation, st.lastConfig = g.Incarnation, sum
	return nil
}

// extensionsDisabled is the status message of every extension while
// Extensions.Enabled=n.
const extensionsDisabled = "extension processing is disabled; to enable it, set Extensions.Enabled=y in " + layout.ConfigFile

// refuseExtensions reports every extension of g failed, running none,
// while Extensions.Enabled=n.
func (a *Agent) refuseExtensions(ctx context.Context, g *wire.GoalState, st *extensionState, w *extensionWorker) error {
	doc, err := a.Wire.ExtensionsConfig(ctx, g)
	if err != nil {
		return fmt.Errorf("extensions of incarnation %s: %w", g.Incarnation, err)
	}
	cfg, err := extconf.Parse(doc)
	if cfg == nil {
		st.incarnation = g.Incarnation
		w.failed(err.Error())
		return nil
	}
	w.setTarget(cfg.StatusUploadBlob, cfg.StatusBlobType)
	if len(cfg.Plugins) > 0 {
		a.log().Warn("extensions not processed", "incarnation", g.Incarnation, "handlers", len(cfg.Plugins), "reason", extensionsDisabled)
	}
	a.Extensions.Refuse(cfg, extensionsDisabled)
	st.incarnation = g.Incarnation
	return nil
}

// onHold reads the InVMArtifactsProfileBlob: while it says onHold, handlers
// wait, as WALinuxAgent's _extensions_on_hold does. An unreadable profile
// is not a hold.
func (a *Agent) onHold(ctx context.Context, cfg *extconf.Config) bool {
	if cfg.InVMArtifactsProfileBlob == "" {
		return false
	}
	doc, err := a.Extensions.Fetch.Get(ctx, cfg.InVMArtifactsProfileBlob, maxArtifactsProfile)
	if err != nil {
		a.log().Warn("InVMArtifactsProfileBlob", "err", err)
		return false
	}
	hold, err := extconf.ParseArtifactsProfile(doc)
	return err == nil && hold
}

// reportExtensionStatus uploads the aggregate status document, rebuilt
// from the handlers' status files, on every loop as WALinuxAgent does,
// once the goal state gave a status blob; also while the worker runs a
// handler.
func (a *Agent) reportExtensionStatus(ctx context.Context, w *extensionWorker, info extension.Agent, health wire.Health) {
	blobURL, blobType, goalStateError := w.target()
	if blobURL == "" {
		return
	}
	msg := "Guest Agent is running"
	status := "Ready"
	if health.State != wire.Ready {
		status, msg = "NotReady", health.Description
	}
	if goalStateError != "" {
		msg = goalStateError
	}
	info.Status, info.Message = status, msg
	doc := a.Extensions.StatusDocument(info, time.Now())
	if err := a.Wire.UploadStatus(ctx, blobURL, blobType, doc); err != nil {
		a.log().Warn("status upload failed", "err", err)
	}
}
