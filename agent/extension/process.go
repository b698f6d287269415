package extension

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vhdprep/vhdprep/agent/extconf"
)

// ErrGoalStateChanged stops processing when a newer goal state arrived:
// the handlers not yet processed wait for it, as in WALinuxAgent.
var ErrGoalStateChanged = errors.New("a newer goal state arrived; processing it instead")

// Processor runs the handlers of an ExtensionsConfig and remembers what
// happened to each, for the status document.
type Processor struct {
	Dirs   Dirs
	Fetch  *Fetcher
	Limits Limits
	// DependencyWait bounds how long a handler others depend on may stay
	// transitioning before they run anyway (WALinuxAgent's 90 minutes when zero).
	DependencyWait time.Duration
	// WireAddress is the wire server's address given to handlers.
	WireAddress string
	// Changed reports whether a newer goal state is waiting; it is asked
	// between handlers. nil: never.
	Changed func() bool
	Log     *slog.Logger

	mu      sync.Mutex
	results []*result // of the last Process, in goal-state order
}

// result is what processing one handler left.
type result struct {
	name, version string
	state         string // the plugin's goal state
	ready         bool
	code          int
	message       string
	seq           int
	hasSettings   bool
	operation     string
	dir           string
	heartbeat     bool
}

// Process brings the handlers to the states cfg asks for, in dependency
// order: enabled handlers by ascending DependsOn level, disabled and
// uninstalled ones first, highest level first. A handler whose level
// failed makes the higher levels wait, reported as errors.
func (p *Processor) Process(ctx context.Context, cfg *extconf.Config) error {
	results := make([]*result, len(cfg.Plugins))
	for i, pl := range cfg.Plugins {
		results[i] = &result{name: pl.Name, version: pl.Version, state: pl.State, seq: -1, dir: p.Dirs.handler(pl.Name, pl.Version).dir}
		if ext := single(pl); ext != nil {
			results[i].seq, results[i].hasSettings = ext.SeqNo, true
		}
	}
	p.mu.Lock()
	p.results = results
	p.mu.Unlock()
	// Unpack directories a killed agent left are half-done downloads.
	left, _ := filepath.Glob(filepath.Join(p.Dirs.Lib, ".*"+unpackSuffix+"*"))
	for _, d := range left {
		_ = os.RemoveAll(d)
	}

	if unsupported := unsupportedFeatures(cfg.RequiredFeatures); len(unsupported) > 0 {
		for _, r := range results {
			p.fail(r, codeProcessingError, fmt.Errorf("the goal state requires features this agent does not support: %v", unsupported))
		}
		return fmt.Errorf("ExtensionsConfig requires unsupported features %v", unsupported)
	}
	order := make([]int, len(cfg.Plugins))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return sortKey(cfg.Plugins[a]) - sortKey(cfg.Plugins[b]) })
	failedLevel := -1
	for n, i := range order {
		pl, r := cfg.Plugins[i], results[i]
		if ctx.Err() != nil || (n > 0 && p.Changed != nil && p.Changed()) {
			for _, j := range order[n:] {
				p.fail(results[j], codeProcessingError, ErrGoalStateChanged)
			}
			return ErrGoalStateChanged
		}
		level := sortKey(pl)
		if failedLevel >= 0 && level > failedLevel {
			p.fail(r, codeProcessingError, errors.New("skipped: an extension it depends on failed"))
			continue
		}
		if err := p.handle(ctx, pl, r); err != nil {
			p.fail(r, codeFor(err), err)
			if pl.State == extconf.StateEnabled {
				failedLevel = level
			}
			continue
		}
		if pl.State == extconf.StateEnabled && p.othersDepend(cfg, level) && !p.awaitSuccess(ctx, r) {
			failedLevel = level
		}
	}
	return nil
}

// sortKey is WALinuxAgent's dependency_level_sort_key: enabled handlers by
// level; the others before them, in reverse level order.
func sortKey(pl extconf.Plugin) int {
	level := 0
	if ext := single(pl); ext != nil {
		level = ext.DependsOnLevel
	}
	if pl.State != extconf.StateEnabled {
		return -level - 1
	}
	return level
}

func (p *Processor) othersDepend(cfg *extconf.Config, level int) bool {
	for _, pl := range cfg.Plugins {
		if pl.State == extconf.StateEnabled && sortKey(pl) > level {
			return true
		}
	}
	return false
}

// awaitSuccess waits until the handler's status file says success or
// error, as WALinuxAgent's wait_for_handler_completion does before
// running the handlers that depend on it.
func (p *Processor) awaitSuccess(ctx context.Context, r *result) bool {
	wait := p.DependencyWait
	if wait <= 0 {
		wait = 90 * time.Minute
	}
	deadline := time.Now().Add(wait)
	for {
		st := readStatus(statusPath(r.dir, r.seq), r.name, "Enable")
		switch st.Status {
		case StatusSuccess, StatusWarning:
			return true
		case StatusError:
			return false
		}
		if time.Now().After(deadline) || sleep(ctx, time.Second) != nil {
			return false
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// single is the runtime settings of a single-config handler, or nil.
func single(pl extconf.Plugin) *extconf.Extension {
	if len(pl.Extensions) == 0 {
		return nil
	}
	return &pl.Extensions[0]
}

// supportedFeatures are the optional protocol features this agent
// implements and advertises; none yet (no multi-config handlers, no
// extension telemetry pipeline, no version-specific goal states).
var supportedFeatures = map[string]string{}

func unsupportedFeatures(req []extconf.Feature) []string {
	var out []string
	for _, f := range req {
		if _, ok := supportedFeatures[f.Name]; !ok {
			out = append(out, f.Name)
		}
	}
	return out
}

// handle brings one handler to its goal state.
func (p *Processor) handle(ctx context.Context, pl extconf.Plugin, r *result) error {
	if pl.Err != nil {
		return &opError{"Download", codeProcessingError, pl.Err}
	}
	if pl.IsMultiConfig {
		return &opError{"Enable", codeProcessingError, errors.New("multi-config handlers are not supported by vhdprep-agent")}
	}
	ext := single(pl)
	if ext == nil {
		ext = &extconf.Extension{}
	}
	switch pl.State {
	case extconf.StateEnabled:
		return p.enable(ctx, pl, ext, r)
	case extconf.StateDisabled:
		old := p.Dirs.installed(pl.Name)
		if old == nil {
			r.ready, r.operation, r.message = true, "Disable", "not installed"
			return nil
		}
		r.dir = old.dir
		if err := old.writeSettings(*ext); err != nil {
			return &opError{"Disable", codeDisableFailed, err}
		}
		if old.state() == StateEnabled {
			if _, err := p.run(ctx, old, "Disable", *ext, nil); err != nil {
				return err
			}
		}
		r.ready, r.operation = true, "Disable"
		return old.setState(StateInstalled)
	case extconf.StateUninstall:
		old := p.Dirs.installed(pl.Name)
		r.operation = "Uninstall"
		if old == nil {
			r.ready = true
			return nil
		}
		if err := p.uninstall(ctx, old, *ext); err != nil {
			return err
		}
		r.ready = true
		return nil
	}
	return &opError{"Enable", codeProcessingError, fmt.Errorf("unknown state %q", pl.State)}
}

// enable installs or updates the handler when needed, then runs enable:
// on every new goal state, as WALinuxAgent does, so a restarted agent
// enables again without installing again.
func (p *Processor) enable(ctx context.Context, pl extconf.Plugin, ext *extconf.Extension, r *result) error {
	h := p.Dirs.handler(pl.Name, pl.Version)
	r.dir = h.dir
	old := p.Dirs.installed(pl.Name)
	if old != nil && old.version != pl.Version {
		if err := p.update(ctx, pl, old, h, *ext); err != nil {
			return err
		}
	} else if h.state() == StateNotInstalled {
		if err := p.download(ctx, pl, h); err != nil {
			return err
		}
		if err := h.initialize(); err != nil {
			return &opError{"Install", codeInstallFailed, err}
		}
		if err := h.writeSettings(*ext); err != nil {
			return &opError{"Install", codeInstallFailed, err}
		}
		if _, err := p.run(ctx, h, "Install", *ext, map[string]string{EnvUninstallReturnCode: notRun}); err != nil {
			return err
		}
		if err := h.setState(StateInstalled); err != nil {
			return &opError{"Install", codeInstallFailed, err}
		}
	} else {
		if err := h.initialize(); err != nil {
			return &opError{"Enable", codeEnableFailed, err}
		}
		if err := h.writeSettings(*ext); err != nil {
			return &opError{"Enable", codeEnableFailed, err}
		}
	}
	if _, err := p.run(ctx, h, "Enable", *ext, nil); err != nil {
		return err
	}
	m, _ := h.manifest()
	r.ready, r.operation, r.heartbeat = true, "Enable", m != nil && m.ReportHeartbeat
	return h.setState(StateEnabled)
}

// download fetches and unpacks the handler, discarding a directory an
// interrupted earlier attempt left without marking it installed.
func (p *Processor) download(ctx context.Context, pl extconf.Plugin, h *handler) error {
	if err := os.RemoveAll(h.dir); err != nil {
		return &opError{"Download", codePackageExtractFailed, err}
	}
	if err := os.MkdirAll(p.Dirs.Lib, 0o755); err != nil {
		return &opError{"Download", codePackageExtractFailed, err}
	}
	pkg, err := p.Fetch.Package(ctx, pl)
	if err != nil {
		return &opError{"Download", codePackageDownloadFailed, err}
	}
	if err := Unpack(pkg, h.dir); err != nil {
		return &opError{"Download", codePackageExtractFailed, err}
	}
	if _, err := h.manifest(); err != nil {
		_ = h.remove()
		return &opError{"Download", codeHandlerManifestError, err}
	}
	return nil
}

// update moves from old to h in WALinuxAgent's order: old disable, new
// update, old uninstall, new install (unless updateMode is
// UpdateWithoutInstall); a failing disable or uninstall of the old
// version is passed over when the new manifest says continueOnUpdateFailure.
func (p *Processor) update(ctx context.Context, pl extconf.Plugin, old, h *handler, ext extconf.Extension) error {
	if err := p.download(ctx, pl, h); err != nil {
		return err
	}
	m, _ := h.manifest()
	if err := h.initialize(); err != nil {
		return &opError{"Update", codeUpdateFailed, err}
	}
	env := map[string]string{EnvUpdatingFromVersion: old.version, "VERSION": h.version, EnvDisableReturnCode: notRun}
	if old.state() == StateEnabled {
		_, err := p.run(ctx, old, "Disable", ext, nil)
		env[EnvDisableReturnCode] = strconv.Itoa(exitCode(err))
		if err != nil && !m.ContinueOnUpdateFailure {
			return p.failUpgrade(h, err)
		}
		_ = old.setState(StateInstalled)
	}
	if err := h.copyStatus(old); err != nil {
		return &opError{"Update", codeUpdateFailed, err}
	}
	if err := h.writeSettings(ext); err != nil {
		return &opError{"Update", codeUpdateFailed, err}
	}
	if _, err := p.run(ctx, h, "Update", ext, env); err != nil {
		return p.failUpgrade(h, err)
	}
	_, uerr := p.run(ctx, old, "Uninstall", ext, nil)
	if uerr != nil && !m.ContinueOnUpdateFailure {
		return p.failUpgrade(h, uerr)
	}
	if err := old.remove(); err != nil {
		return &opError{"Update", codeUpdateFailed, err}
	}
	if m.updateWithInstall() {
		ienv := map[string]string{EnvUninstallReturnCode: strconv.Itoa(exitCode(uerr))}
		if _, err := p.run(ctx, h, "Install", ext, ienv); err != nil {
			return err
		}
	}
	if err := h.setState(StateInstalled); err != nil {
		return &opError{"Update", codeUpdateFailed, err}
	}
	return nil
}

func (p *Processor) failUpgrade(h *handler, err error) error {
	_ = h.setState(StateFailedUpgrade)
	return err
}

// uninstall disables an enabled handler, uninstalls it and removes its directory.
func (p *Processor) uninstall(ctx context.Context, h *handler, ext extconf.Extension) error {
	if h.state() == StateEnabled {
		if _, err := p.run(ctx, h, "Disable", ext, nil); err != nil {
			p.log().Warn("disable before uninstall failed; uninstalling anyway", "handler", h.name, "err", err)
		}
	}
	if _, err := p.run(ctx, h, "Uninstall", ext, nil); err != nil {
		return err
	}
	return h.remove()
}

// run runs the handler's command for op with WALinuxAgent's environment.
func (p *Processor) run(ctx context.Context, h *handler, op string, ext extconf.Extension, extra map[string]string) (string, error) {
	m, err := h.manifest()
	if err != nil {
		return "", &opError{op, codeHandlerManifestError, err}
	}
	command, limit := map[string]string{
		"Install": m.Install, "Enable": m.Enable, "Disable": m.Disable, "Uninstall": m.Uninstall, "Update": m.Update,
	}[op], p.limits().Other
	if op == "Enable" {
		limit = p.limits().Enable
	}
	if command == "" {
		return "", nil // WALinuxAgent skips a command the manifest leaves out
	}
	env := []string{
		EnvExtensionPath + "=" + h.dir,
		EnvExtensionVersion + "=" + h.version,
		EnvSeqNumber + "=" + strconv.Itoa(ext.SeqNo),
		EnvWireProtocolAddress + "=" + p.WireAddress,
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	p.log().Info("running handler command", "handler", h.name, "version", h.version, "operation", op)
	out, err := run(ctx, op, h.dir, command, env, limit)
	if err != nil {
		return out, &opError{op, opCode(op, err), err}
	}
	return out, nil
}

func (p *Processor) limits() Limits {
	l := p.Limits
	if l.Enable <= 0 {
		l.Enable = DefaultLimits.Enable
	}
	if l.Other <= 0 {
		l.Other = DefaultLimits.Other
	}
	return l
}

func (p *Processor) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// fail records a failure and, for a handler on disk that has not said
// otherwise, writes it as the extension's status file, as WALinuxAgent's
// create_status_file_if_not_exist does.
func (p *Processor) fail(r *result, code int, err error) {
	op := "Enable"
	var oe *opError
	if errors.As(err, &oe) {
		op = oe.op
	}
	p.log().Error("extension handler failed", "handler", r.name, "version", r.version, "operation", op, "err", err)
	p.mu.Lock()
	r.ready, r.code, r.message, r.operation = false, code, err.Error(), op
	p.mu.Unlock()
	path := statusPath(r.dir, r.seq)
	if _, serr := os.Stat(path); !r.hasSettings || !errors.Is(serr, os.ErrNotExist) {
		return
	}
	if _, derr := os.Stat(r.dir); derr != nil {
		return // never installed: the aggregate status reports the failure
	}
	doc, _ := json.Marshal([]any{map[string]any{
		"version":      "1.0",
		"timestampUTC": time.Now().UTC().Format(time.RFC3339),
		"status": ExtensionStatus{Name: r.name, Operation: op, Status: StatusError, Code: code,
			FormattedMessage: english(err.Error()), SubStatus: []SubStatus{}},
	}})
	if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
		_ = writeFile(path, doc, 0o644)
	}
}

func statusPath(dir string, seq int) string {
	return filepath.Join(dir, "status", strconv.Itoa(seq)+".status")
}

// opError is a failed operation with the code WALinuxAgent reports for it.
type opError struct {
	op   string
	code int
	err  error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

func codeFor(err error) int {
	var oe *opError
	if errors.As(err, &oe) {
		return oe.code
	}
	return codeProcessingError
}

func opCode(op string, err error) int {
	var ce *CommandError
	if errors.As(err, &ce) && ce.TimedOut {
		return codeScriptTimedOut
	}
	return map[string]int{"Install": codeInstallFailed, "Enable": codeEnableFailed, "Disable": codeDisableFailed,
		"Uninstall": codeProcessingError, "Update": codeUpdateFailed}[op]
}

// exitCode is a command's exit code for the *_EXIT_CODE variables: 0 on success.
func exitCode(err error) int {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.ExitCode
	}
	if err != nil {
		return -1
	}
	return 0
}
