package extension

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vhdprep/vhdprep/agent/extconf"
	"github.com/vhdprep/vhdprep/internal/pause"
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
	// SystemdRun is systemd-run's path (see SystemdRun): each command then
	// runs in a scope of its own under ExtensionSlice. "": a plain process
	// group.
	SystemdRun string
	// Changed reports whether a newer goal state is waiting; it is asked
	// between handlers. nil: never.
	Changed func() bool
	Log     *slog.Logger

	// results are what the status document reports: copies of the items
	// of the last Process, in goal-state order, each saved when its
	// processing ended, so the document can be built while Process runs.
	mu      sync.Mutex
	results []result

	noScope atomic.Bool // systemd-run failed: commands run without a scope
}

// result is what processing one handler, or one extension of a
// multi-config handler, left.
type result struct {
	done          bool // processed; until then the status document says it is under way
	name, version string
	state         string // the plugin's goal state
	ext           string // the extension's name for a multi-config handler, else ""
	gone          bool   // a multi-config extension disabled and deleted: nothing to report
	// extFailed: a multi-config extension's own enable command failed,
	// which its status reports; the handler's status stays the handler's.
	extFailed   bool
	ready       bool
	code        int
	message     string
	seq         int
	hasSettings bool
	operation   string
	dir         string
	heartbeat   bool
}

// statusPath is "" for an extension name that would lead out of the handler directory.
func (r *result) statusPath() string {
	if r.ext != "" && !extNamePattern.MatchString(r.ext) {
		return ""
	}
	return statusPath(r.dir, r.ext, r.seq)
}

// fullName is WALinuxAgent's name for an extension in messages:
// <Handler>.<Extension> for a multi-config one, else the handler's.
func (r *result) fullName() string {
	if r.ext == "" {
		return r.name
	}
	return r.name + "." + r.ext
}

// item is one unit of processing: a handler with its runtime settings
// (nil when it has none), or one extension of a multi-config handler.
// Process alone reads and writes r; save publishes it as results[slot].
type item struct {
	pl   extconf.Plugin
	ext  *extconf.Extension
	r    *result
	slot int
}

// items lists the units of processing of cfg in goal-state order.
func (p *Processor) items(cfg *extconf.Config) []item {
	var out []item
	for _, pl := range cfg.Plugins {
		r := &result{name: pl.Name, version: pl.Version, state: pl.State, seq: -1, dir: p.Dirs.handler(pl.Name, pl.Version).dir}
		if !pl.IsMultiConfig || len(pl.Extensions) == 0 {
			ext := single(pl)
			if ext != nil {
				r.seq, r.hasSettings = ext.SeqNo, true
			}
			out = append(out, item{pl, ext, r, len(out)})
			continue
		}
		exts := slices.Concat(pl.Extensions, p.dropped(pl))
		for i := range exts {
			e := &exts[i]
			rr := *r
			rr.ext, rr.seq, rr.hasSettings = e.Name, e.SeqNo, true
			out = append(out, item{pl, e, &rr, len(out)})
		}
	}
	return out
}

// dropped are the extensions of an enabled multi-config handler that are
// enabled on disk but missing from the goal state, as deletions: the
// fabric says "disabled" for a deleted extension, and treating a
// missing one alike keeps it from running on unreported.
func (p *Processor) dropped(pl extconf.Plugin) []extconf.Extension {
	if pl.State != extconf.StateEnabled {
		return nil
	}
	h := p.Dirs.handler(pl.Name, pl.Version)
	var out []extconf.Extension
	for _, name := range h.enabledExtensions() {
		if !slices.ContainsFunc(pl.Extensions, func(e extconf.Extension) bool { return e.Name == name }) {
			out = append(out, extconf.Extension{Name: name, SeqNo: h.lastSeq(name), State: extconf.StateDisabled})
		}
	}
	return out
}

// Process brings the handlers, and the extensions of multi-config
// handlers, to the states cfg asks for, in dependency order: enabled ones
// by ascending DependsOn level, disabled and uninstalled ones first,
// highest level first. A level that failed makes the higher levels wait,
// reported as errors.
func (p *Processor) Process(ctx context.Context, cfg *extconf.Config) error {
	items := p.publish(cfg)
	// Unpack directories a killed agent left are half-done downloads.
	left, _ := filepath.Glob(filepath.Join(p.Dirs.Lib, ".*"+unpackSuffix+"*"))
	for _, d := range left {
		_ = os.RemoveAll(d)
	}

	if unsupported := unsupportedFeatures(cfg.RequiredFeatures); len(unsupported) > 0 {
		for _, it := range items {
			p.fail(it, codeProcessingError, fmt.Errorf("the goal state requires features this agent does not support: %v", unsupported))
		}
		return fmt.Errorf("ExtensionsConfig requires unsupported features %v", unsupported)
	}
	slices.SortStableFunc(items, func(a, b item) int { return a.sortKey() - b.sortKey() })
	failedLevel := -1
	for n, it := range items {
		if ctx.Err() != nil {
			return ctx.Err() // the agent stops: the next one takes over
		}
		if n > 0 && p.Changed != nil && p.Changed() {
			for _, rest := range items[n:] {
				p.fail(rest, codeProcessingError, ErrGoalStateChanged)
			}
			return ErrGoalStateChanged
		}
		level := it.sortKey()
		if failedLevel >= 0 && level > failedLevel {
			p.fail(it, codeProcessingError, errors.New("skipped: an extension it depends on failed"))
			continue
		}
		if err := p.handle(ctx, it.pl, it.ext, it.r); err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // not the handler's failure
			}
			p.fail(it, codeFor(err), err)
			if it.enabled() {
				failedLevel = level
			}
			continue
		}
		p.save(it)
		if it.enabled() && othersDepend(items, level) && !p.awaitSuccess(ctx, it.r) {
			failedLevel = level
		}
	}
	p.removeLeft(ctx, cfg)
	return nil
}

// removeLeft uninstalls the handlers on disk that the goal state no longer
// names (disabling an enabled one first) and removes their directories, as
// WALinuxAgent's _cleanup_outdated_handlers removes them: a failing command
// does not keep the directory.
func (p *Processor) removeLeft(ctx context.Context, cfg *extconf.Config) {
	entries, _ := os.ReadDir(p.Dirs.Lib)
	for _, e := range entries {
		i := strings.LastIndexByte(e.Name(), '-')
		if i <= 0 || !e.IsDir() || strings.HasPrefix(e.Name(), agentPackagePrefix) {
			continue
		}
		name, version := e.Name()[:i], e.Name()[i+1:]
		if !versionPattern.MatchString(version) || slices.ContainsFunc(cfg.Plugins, func(pl extconf.Plugin) bool { return pl.Name == name }) {
			continue
		}
		h := p.Dirs.handler(name, version)
		if _, err := h.manifest(); err != nil {
			continue // not a handler
		}
		p.log().Info("removing a handler the goal state no longer names", "handler", name, "version", version)
		if h.state() != StateNotInstalled {
			if err := p.uninstall(ctx, h, extconf.Extension{SeqNo: h.lastSeq("")}); err != nil {
				p.log().Warn("uninstall of a handler left out of the goal state failed; removing it anyway", "handler", name, "err", err)
			}
		}
		if err := h.remove(); err != nil {
			p.log().Warn("removing a handler directory", "dir", h.dir, "err", err)
		}
	}
}

// agentPackagePrefix names WALinuxAgent's own packages in its lib
// directory, which are no handlers.
const agentPackagePrefix = "WALinuxAgent-"

// publish makes cfg's items, not processed yet, the ones the status
// document reports, and returns them.
func (p *Processor) publish(cfg *extconf.Config) []item {
	items := p.items(cfg)
	results := make([]result, len(items))
	for i, it := range items {
		results[i] = *it.r
	}
	p.mu.Lock()
	p.results = results
	p.mu.Unlock()
	return items
}

// save publishes what processing it left.
func (p *Processor) save(it item) {
	it.r.done = true
	p.mu.Lock()
	p.results[it.slot] = *it.r
	p.mu.Unlock()
}

// Refuse runs nothing and reports every handler, and every extension of a
// multi-config handler, of cfg as failed with why, as WALinuxAgent does
// when extension processing is disabled: Azure then fails the operation at
// once instead of waiting for its timeout.
func (p *Processor) Refuse(cfg *extconf.Config, why string) {
	items := p.publish(cfg)
	for _, it := range items {
		op, code := "Enable", codeEnableFailed
		if !it.enabled() {
			op, code = "Uninstall", codeDisableFailed
		} else if path := it.r.statusPath(); path != "" {
			// The handler's own status of an earlier run would hide this one.
			_ = os.Remove(path)
		}
		p.fail(it, code, &opError{op, code, fmt.Errorf("extension '%s' will not be processed: %s", it.r.fullName(), why)})
	}
}

// enabled reports whether the goal state asks for the item enabled: its
// handler and, for a multi-config extension, the extension itself.
func (it item) enabled() bool {
	return it.pl.State == extconf.StateEnabled && (it.ext == nil || it.ext.State == "" || it.ext.State == extconf.StateEnabled)
}

// sortKey is WALinuxAgent's dependency_level_sort_key: enabled items by
// level; the others before them, in reverse level order.
func (it item) sortKey() int {
	level := 0
	if it.ext != nil {
		level = it.ext.DependsOnLevel
	}
	if !it.enabled() {
		return -level - 1
	}
	return level
}

func othersDepend(items []item, level int) bool {
	for _, it := range items {
		if it.enabled() && it.sortKey() > level {
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
		st := readStatus(r.statusPath(), r.fullName(), "Enable")
		switch st.Status {
		case StatusSuccess, StatusWarning:
			return true
		case StatusError:
			return false
		}
		if time.Now().After(deadline) || pause.For(ctx, time.Second) != nil {
			return false
		}
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
// implements and advertises, with their versions: multi-config handlers
// (not the extension telemetry pipeline, nor version-specific goal states).
var supportedFeatures = map[string]string{"MultipleExtensionsPerHandler": "1.0"}

func unsupportedFeatures(req []extconf.Feature) []string {
	var out []string
	for _, f := range req {
		if _, ok := supportedFeatures[f.Name]; !ok {
			out = append(out, f.Name)
		}
	}
	return out
}

// handle brings one handler, or one extension of a multi-config handler,
// to its goal state.
func (p *Processor) handle(ctx context.Context, pl extconf.Plugin, ext *extconf.Extension, r *result) error {
	if pl.Err != nil {
		return &opError{"Download", codeProcessingError, pl.Err}
	}
	if ext == nil {
		ext = &extconf.Extension{}
	}
	if pl.IsMultiConfig && !extNamePattern.MatchString(ext.Name) {
		return &opError{"Enable", codeProcessingError, fmt.Errorf("extension name %q: only letters, digits, '_', '-' and '.' may name a multi-config extension", ext.Name)}
	}
	switch pl.State {
	case extconf.StateEnabled:
		h, err := p.ensureInstalled(ctx, pl, *ext, r)
		if err != nil {
			return err
		}
		if pl.IsMultiConfig && ext.State == extconf.StateDisabled {
			return p.deleteExtension(ctx, h, *ext, r)
		}
		return p.enable(ctx, h, *ext, r)
	case extconf.StateDisabled:
		old := p.Dirs.installed(pl.Name)
		if old == nil {
			r.ready, r.operation, r.message = true, "Disable", "not installed"
			return nil
		}
		r.dir = old.dir
		if err := old.writeSettings(*ext, r.hasSettings); err != nil {
			return &opError{"Disable", codeDisableFailed, err}
		}
		if old.state() == StateEnabled && (!pl.IsMultiConfig || old.extState(ext.Name) == ExtEnabled) {
			if _, err := p.run(ctx, old, "Disable", *ext, nil); err != nil {
				return err
			}
		}
		r.ready, r.operation = true, "Disable"
		if pl.IsMultiConfig {
			if ext.State == extconf.StateDisabled {
				return p.forget(old, ext.Name, r)
			}
			if err := old.setExtState(ext.Name, ExtDisabled); err != nil {
				return &opError{"Disable", codeDisableFailed, err}
			}
			if len(old.enabledExtensions()) > 0 {
				return nil
			}
		}
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

// extNamePattern is what may name an extension of a multi-config handler:
// the name becomes part of file names in the handler directory.
var extNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ensureInstalled installs or updates the handler when needed and writes
// the extension's settings.
func (p *Processor) ensureInstalled(ctx context.Context, pl extconf.Plugin, ext extconf.Extension, r *result) (*handler, error) {
	h := p.Dirs.handler(pl.Name, pl.Version)
	r.dir = h.dir
	old := p.Dirs.installed(pl.Name)
	switch {
	case old != nil && old.version != pl.Version:
		if err := p.update(ctx, pl, old, h, ext, r.hasSettings); err != nil {
			return nil, err
		}
	case h.state() == StateNotInstalled:
		if err := p.download(ctx, pl, h); err != nil {
			return nil, err
		}
		if err := h.initialize(); err != nil {
			return nil, &opError{"Install", codeInstallFailed, err}
		}
		if err := h.writeSettings(ext, r.hasSettings); err != nil {
			return nil, &opError{"Install", codeInstallFailed, err}
		}
		if _, err := p.run(ctx, h, "Install", ext, map[string]string{EnvUninstallReturnCode: notRun}); err != nil {
			return nil, err
		}
		if err := h.setState(StateInstalled); err != nil {
			return nil, &opError{"Install", codeInstallFailed, err}
		}
	default:
		if err := checkMultiConfig(pl, h); err != nil {
			return nil, err
		}
		if err := h.initialize(); err != nil {
			return nil, &opError{"Enable", codeEnableFailed, err}
		}
		if err := h.writeSettings(ext, r.hasSettings); err != nil {
			return nil, &opError{"Enable", codeEnableFailed, err}
		}
	}
	return h, nil
}

// checkMultiConfig fails a multi-config goal state for a handler whose
// HandlerManifest.json does not say supportsMultipleExtensions, as
// WALinuxAgent's ensure_consistent_data_for_mc does.
func checkMultiConfig(pl extconf.Plugin, h *handler) error {
	m, err := h.manifest()
	if err != nil {
		return &opError{"Enable", codeHandlerManifestError, err}
	}
	if pl.IsMultiConfig && !m.SupportsMultipleExtensions {
		return &opError{"Enable", codeProcessingError, fmt.Errorf("handler %s %s got multi-config settings (ExtensionRuntimeSettings) but its HandlerManifest.json does not set supportsMultipleExtensions; the goal state and the handler disagree, ask the handler's publisher which to use", pl.Name, pl.Version)}
	}
	return nil
}

// enable runs enable: on every new goal state, as WALinuxAgent does, so a
// restarted agent enables again without installing again.
func (p *Processor) enable(ctx context.Context, h *handler, ext extconf.Extension, r *result) error {
	if _, err := p.run(ctx, h, "Enable", ext, nil); err != nil {
		return err
	}
	if ext.Name != "" {
		if err := h.setExtState(ext.Name, ExtEnabled); err != nil {
			return &opError{"Enable", codeEnableFailed, err}
		}
	}
	m, _ := h.manifest()
	r.ready, r.operation, r.heartbeat = true, "Enable", m != nil && m.ReportHeartbeat
	return h.setState(StateEnabled)
}

// deleteExtension disables an extension of a multi-config handler that
// the goal state deleted and removes its files; a failing disable does not
// stop it, as in WALinuxAgent, for whom this is the extension's uninstall.
func (p *Processor) deleteExtension(ctx context.Context, h *handler, ext extconf.Extension, r *result) error {
	r.operation = "Disable"
	if h.extState(ext.Name) != ExtDisabled {
		if _, err := p.run(ctx, h, "Disable", ext, nil); err != nil {
			p.log().Warn("disable of a deleted extension failed; deleting it anyway", "handler", h.name, "extension", ext.Name, "err", err)
		}
	}
	r.ready = true
	return p.forget(h, ext.Name, r)
}

// forget removes a deleted extension's files; the handler counts as
// disabled once none of its extensions is enabled.
func (p *Processor) forget(h *handler, ext string, r *result) error {
	if err := h.removeExtension(ext); err != nil {
		return &opError{"Disable", codeDisableFailed, err}
	}
	r.gone = true
	if len(h.enabledExtensions()) > 0 {
		return nil
	}
	return h.setState(StateInstalled)
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
	if err := checkMultiConfig(pl, h); err != nil {
		_ = h.remove()
		return err
	}
	return nil
}

// update moves from old to h in WALinuxAgent's order: old disable, new
// update, old uninstall, new install (unless updateMode is
// UpdateWithoutInstall); a failing disable or uninstall of the old
// version is passed over when the new manifest says continueOnUpdateFailure.
func (p *Processor) update(ctx context.Context, pl extconf.Plugin, old, h *handler, ext extconf.Extension, hasSettings bool) error {
	if err := p.download(ctx, pl, h); err != nil {
		return err
	}
	m, _ := h.manifest()
	if err := h.initialize(); err != nil {
		return &opError{"Update", codeUpdateFailed, err}
	}
	env := map[string]string{EnvUpdatingFromVersion: old.version, "VERSION": h.version}
	if ext.Name == "" {
		env[EnvDisableReturnCode] = notRun
	}
	if old.state() == StateEnabled {
		type disableCode struct {
			Name string `json:"extensionName"`
			Code string `json:"exitCode"`
		}
		var codes []disableCode
		for _, e := range enabledSettings(old, ext) {
			_, err := p.run(ctx, old, "Disable", e, nil)
			if e.Name == "" {
				env[EnvDisableReturnCode] = strconv.Itoa(exitCode(err))
			} else {
				codes = append(codes, disableCode{e.Name, strconv.Itoa(exitCode(err))})
			}
			if err != nil && !m.ContinueOnUpdateFailure {
				return p.failUpgrade(h, err)
			}
		}
		if ext.Name != "" {
			b, _ := json.Marshal(codes)
			env[EnvDisableReturnCodes] = string(b)
		}
		_ = old.setState(StateInstalled)
	}
	if err := h.copyStatus(old); err != nil {
		return &opError{"Update", codeUpdateFailed, err}
	}
	if err := h.writeSettings(ext, hasSettings); err != nil {
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

// enabledSettings are the settings to disable a handler with: for a
// multi-config one, each extension enabled on disk with its last sequence
// number; else ext.
func enabledSettings(h *handler, ext extconf.Extension) []extconf.Extension {
	names := h.enabledExtensions()
	if len(names) == 0 {
		return []extconf.Extension{ext}
	}
	var out []extconf.Extension
	for _, name := range names {
		out = append(out, extconf.Extension{Name: name, SeqNo: h.lastSeq(name)})
	}
	return out
}

func (p *Processor) failUpgrade(h *handler, err error) error {
	_ = h.setState(StateFailedUpgrade)
	return err
}

// uninstall disables an enabled handler (each enabled extension of a
// multi-config one), uninstalls it and removes its directory.
func (p *Processor) uninstall(ctx context.Context, h *handler, ext extconf.Extension) error {
	if h.state() == StateEnabled {
		for _, e := range enabledSettings(h, ext) {
			if _, err := p.run(ctx, h, "Disable", e, nil); err != nil {
				p.log().Warn("disable before uninstall failed; uninstalling anyway", "handler", h.name, "extension", e.Name, "err", err)
			}
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
	if ext.Name != "" {
		env = append(env, EnvExtensionName+"="+ext.Name)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	p.log().Info("running handler command", "handler", h.name, "version", h.version, "extension", ext.Name, "operation", op)
	out, err := p.launch(ctx, h, op, command, env, limit)
	if err != nil {
		return out, &opError{op, opCode(op, err), err}
	}
	return out, nil
}

// launch runs command in a scope of its own when systemd-run is there, so
// that stopping or restarting the agent leaves it running, else in a plain
// process group. After systemd-run fails to start a scope it runs the
// command without, and every later one, as WALinuxAgent does.
func (p *Processor) launch(ctx context.Context, h *handler, op, command string, env []string, limit time.Duration) (string, error) {
	if p.SystemdRun != "" && !p.noScope.Load() {
		unit := scopeUnit(h.name, op)
		out, err := run(ctx, op, h.dir, scopeArgs(p.SystemdRun, unit, command), env, limit, unit)
		if !errors.Is(err, errNoScope) {
			return out, err
		}
		p.noScope.Store(true)
		p.log().Warn("running extension commands without systemd scopes from now on", "handler", h.name, "operation", op, "err", err)
	}
	return run(ctx, op, h.dir, []string{"/bin/sh", "-c", command}, env, limit, "")
}

// scopeUnit names a command's scope: the handler's name (the characters a
// unit name may hold), the operation, and a random part, as WALinuxAgent's
// <operation>_<uuid>.scope.
func scopeUnit(handler, op string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_':
			return r
		}
		return '_'
	}, handler)
	safe = safe[:min(len(safe), 200)] // a unit name has at most 255 bytes
	return fmt.Sprintf("%s_%s_%016x.scope", safe, strings.ToLower(op), rand.Uint64())
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

// fail records a failure of it and, for a handler on disk that has not
// said otherwise, writes it as the extension's status file, as
// WALinuxAgent's create_status_file_if_not_exist does.
func (p *Processor) fail(it item, code int, err error) {
	op := "Enable"
	var oe *opError
	if errors.As(err, &oe) {
		op = oe.op
	}
	r := it.r
	p.log().Error("extension handler failed", "handler", r.name, "version", r.version, "extension", r.ext, "operation", op, "err", err)
	r.ready, r.code, r.message, r.operation = false, code, err.Error(), op
	var ce *CommandError
	r.extFailed = r.ext != "" && op == "Enable" && errors.As(err, &ce)
	p.save(it)
	path := r.statusPath()
	if _, serr := os.Stat(path); path == "" || !r.hasSettings || !errors.Is(serr, os.ErrNotExist) {
		return
	}
	if _, derr := os.Stat(r.dir); derr != nil {
		return // never installed: the aggregate status reports the failure
	}
	doc, _ := json.Marshal([]any{map[string]any{
		"version":      "1.0",
		"timestampUTC": time.Now().UTC().Format(time.RFC3339),
		"status": ExtensionStatus{Name: r.fullName(), Operation: op, Status: StatusError, Code: code,
			FormattedMessage: english(err.Error()), SubStatus: []SubStatus{}},
	}})
	if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
		_ = writeFile(path, doc, 0o644)
	}
}

func statusPath(dir, ext string, seq int) string {
	return filepath.Join(dir, "status", extFile(ext, seq, "status"))
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
