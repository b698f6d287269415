package extension

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/vhdprep/vhdprep/agent/extconf"
	"github.com/vhdprep/vhdprep/internal/atomicfile"
)

// Handler states kept in config/HandlerState (WALinuxAgent's ExtHandlerState).
const (
	StateNotInstalled  = "NotInstalled"
	StateInstalled     = "Installed"
	StateEnabled       = "Enabled"
	StateFailedUpgrade = "FailedUpgrade"
)

// Dirs are where handlers live: WALinuxAgent's lib dir (handlers in
// <Lib>/<Name>-<Version>/, certificates as <Lib>/<THUMB>.crt/.prv) and the
// extension log root (<Log>/<Name>/).
type Dirs struct {
	Lib, Log string
}

// DefaultDirs are WALinuxAgent's, which extensions hard-code.
var DefaultDirs = Dirs{Lib: "/var/lib/waagent", Log: "/var/log/azure"}

// handler is one version of a handler on disk.
type handler struct {
	name, version string
	dir, logDir   string
}

func (d Dirs) handler(name, version string) *handler {
	return &handler{name: name, version: version,
		dir: filepath.Join(d.Lib, name+"-"+version), logDir: filepath.Join(d.Log, name)}
}

var versionPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// installed returns the version of name that is on disk in a state other
// than NotInstalled, or nil: the handler an update starts from.
func (d Dirs) installed(name string) *handler {
	entries, _ := os.ReadDir(d.Lib)
	for _, e := range entries {
		v, ok := strings.CutPrefix(e.Name(), name+"-")
		if !ok || !e.IsDir() || !versionPattern.MatchString(v) {
			continue
		}
		if h := d.handler(name, v); h.state() != StateNotInstalled {
			return h
		}
	}
	return nil
}

func (h *handler) configDir() string { return filepath.Join(h.dir, "config") }
func (h *handler) statusDir() string { return filepath.Join(h.dir, "status") }

func (h *handler) state() string {
	b, err := os.ReadFile(filepath.Join(h.configDir(), "HandlerState"))
	if err != nil {
		return StateNotInstalled
	}
	return strings.TrimSpace(string(b))
}

func (h *handler) setState(s string) error {
	return writeFile(filepath.Join(h.configDir(), "HandlerState"), []byte(s), 0o644)
}

func (h *handler) manifest() (*HandlerManifest, error) {
	b, err := os.ReadFile(filepath.Join(h.dir, "HandlerManifest.json"))
	if err != nil {
		return nil, fmt.Errorf("%s: %v; the handler package is broken, ask its publisher", h.dir, err)
	}
	m, err := ParseHandlerManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", h.dir, err)
	}
	return m, nil
}

// initialize creates the config, status and log directories and writes
// HandlerEnvironment.json, which tells the handler where they are.
func (h *handler) initialize() error {
	for _, d := range []string{h.configDir(), h.statusDir(), h.logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	env := []map[string]any{{
		"name":    h.name,
		"version": 1.0,
		"handlerEnvironment": map[string]string{
			"logFolder":     h.logDir,
			"configFolder":  h.configDir(),
			"statusFolder":  h.statusDir(),
			"heartbeatFile": filepath.Join(h.dir, "heartbeat.log"),
		},
	}}
	b, _ := json.Marshal(env)
	return writeFile(filepath.Join(h.dir, "HandlerEnvironment.json"), b, 0o644)
}

// writeSettings writes config/<seq>.settings (0600: it carries the
// protected settings, still encrypted, which the handler decrypts with
// the .crt/.prv of their thumbprint) and records seq in mrseq.
func (h *handler) writeSettings(e extconf.Extension) error {
	type handlerSettings struct {
		Thumbprint string          `json:"protectedSettingsCertThumbprint,omitempty"`
		Protected  *string         `json:"protectedSettings"`
		Public     json.RawMessage `json:"publicSettings"`
	}
	hs := handlerSettings{Thumbprint: e.ProtectedSettingsCertThumbprint, Public: e.PublicSettings}
	if e.ProtectedSettings != "" {
		hs.Protected = &e.ProtectedSettings
	}
	if hs.Public == nil {
		hs.Public = json.RawMessage("null")
	}
	doc := map[string]any{"runtimeSettings": []any{map[string]any{"handlerSettings": hs}}}
	// Handlers read commands from here: keep <, > and & as they are, as Python's json.dumps does.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("%s settings %d: %v", h.name, e.SeqNo, err)
	}
	if err := writeFile(filepath.Join(h.configDir(), extFile(e.Name, e.SeqNo, "settings")), buf.Bytes(), 0o600); err != nil {
		return err
	}
	return writeFile(h.mrseqPath(e.Name), []byte(strconv.Itoa(e.SeqNo)), 0o644)
}

// extFile names an extension's settings or status file: <seq>.<kind>, or
// <ext>.<seq>.<kind> for an extension of a multi-config handler.
func extFile(ext string, seq int, kind string) string {
	if ext == "" {
		return strconv.Itoa(seq) + "." + kind
	}
	return ext + "." + strconv.Itoa(seq) + "." + kind
}

// mrseqPath is where the most recent sequence number of ext is kept:
// mrseq, or <ext>.mrseq for an extension of a multi-config handler.
func (h *handler) mrseqPath(ext string) string {
	if ext == "" {
		return filepath.Join(h.dir, "mrseq")
	}
	return filepath.Join(h.dir, ext+".mrseq")
}

// lastSeq is the most recent sequence number of ext, or -1.
func (h *handler) lastSeq(ext string) int {
	b, err := os.ReadFile(h.mrseqPath(ext))
	if n, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
		return n
	}
	return -1
}

// Extension states of a multi-config handler, kept per extension in
// config/<ext>.HandlerState (WALinuxAgent's ExtensionState).
const (
	ExtEnabled  = "enabled"
	ExtDisabled = "disabled"
)

const stateSuffix = ".HandlerState"

func (h *handler) extStatePath(ext string) string {
	return filepath.Join(h.configDir(), ext+stateSuffix)
}

// extState is the state of one extension of a multi-config handler:
// disabled unless its state file says otherwise.
func (h *handler) extState(ext string) string {
	b, err := os.ReadFile(h.extStatePath(ext))
	if err != nil {
		return ExtDisabled
	}
	return strings.TrimSpace(string(b))
}

func (h *handler) setExtState(ext, state string) error {
	return writeFile(h.extStatePath(ext), []byte(state), 0o644)
}

// enabledExtensions are the extensions of a multi-config handler whose
// state file says enabled, by name.
func (h *handler) enabledExtensions() []string {
	entries, _ := os.ReadDir(h.configDir())
	var out []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), stateSuffix)
		if ok && name != "" && h.extState(name) == ExtEnabled {
			out = append(out, name)
		}
	}
	return out
}

// removeExtension deletes what one extension of a multi-config handler
// left: its settings and status files of every sequence number, its
// state and mrseq, as WALinuxAgent does when the extension is deleted.
func (h *handler) removeExtension(ext string) error {
	var errs []error
	for _, dir := range []string{h.configDir(), h.statusDir()} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if isExtFile(e.Name(), ext) {
				errs = append(errs, os.Remove(filepath.Join(dir, e.Name())))
			}
		}
	}
	for _, f := range []string{h.extStatePath(ext), h.mrseqPath(ext)} {
		if err := os.Remove(f); !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// isExtFile reports whether name is <ext>.<seq>.settings or
// <ext>.<seq>.status: exactly, so that removing extension "a" leaves
// extension "a.b" alone.
func isExtFile(name, ext string) bool {
	rest, ok := strings.CutPrefix(name, ext+".")
	if !ok {
		return false
	}
	seq, kind, ok := strings.Cut(rest, ".")
	if _, err := strconv.Atoi(seq); !ok || err != nil {
		return false
	}
	return kind == "settings" || kind == "status"
}

// copyStatus carries the old version's status files to the new one, as
// WALinuxAgent's copy_status_files does before an update.
func (h *handler) copyStatus(from *handler) error {
	entries, _ := os.ReadDir(from.statusDir())
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from.statusDir(), e.Name()))
		if err == nil {
			err = writeFile(filepath.Join(h.statusDir(), e.Name()), b, 0o644)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the handler's directory.
func (h *handler) remove() error { return os.RemoveAll(h.dir) }

// writeFile replaces name atomically, so a crash never leaves a
// half-written state or settings file.
func writeFile(name string, data []byte, perm os.FileMode) error {
	f, err := atomicfile.Create(name, true)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
