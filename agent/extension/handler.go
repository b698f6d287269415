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
	type folders struct {
		LogFolder     string `json:"logFolder"`
		ConfigFolder  string `json:"configFolder"`
		StatusFolder  string `json:"statusFolder"`
		HeartbeatFile string `json:"heartbeatFile"`
	}
	type environment struct {
		Name               string  `json:"name"`
		Version            float64 `json:"version"`
		HandlerEnvironment folders `json:"handlerEnvironment"`
	}
	b, err := json.Marshal([]environment{{
		Name:    h.name,
		Version: handlerEnvironmentVersion,
		HandlerEnvironment: folders{
			LogFolder:     h.logDir,
			ConfigFolder:  h.configDir(),
			StatusFolder:  h.statusDir(),
			HeartbeatFile: filepath.Join(h.dir, "heartbeat.log"),
		},
	}})
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(h.dir, "HandlerEnvironment.json"), pythonSpacing(b), 0o644)
}

// handlerEnvironmentVersion is HandlerEnvironment.json's schema version.
const handlerEnvironmentVersion = 1.0

// pythonSpacing puts a space after every ':' and ',' between tokens of
// compact JSON, as Python's json.dumps writes it. WALinuxAgent writes
// HandlerEnvironment.json so, and handlers read it as text: CustomScript's
// shim finds its log folder by matching `"logFolder": "` up to `",`.
func pythonSpacing(compact []byte) []byte {
	out := make([]byte, 0, len(compact)+len(compact)/8)
	inString, escaped := false, false
	for _, c := range compact {
		out = append(out, c)
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ':' || c == ','):
			out = append(out, ' ')
		}
	}
	return out
}

// writeSettings writes config/<seq>.settings (0600: it carries the
// protected settings, still encrypted, which the handler decrypts with
// the .crt/.prv of their thumbprint). A handler the goal state gives no
// settings (has false) gets an empty 0.settings, as WALinuxAgent writes
// it. mrseq is the handler's own record of the sequence it has run: the
// agent never writes it (handlers skip a sequence mrseq names), and only
// carries it over on update.
func (h *handler) writeSettings(e extconf.Extension, has bool) error {
	name := filepath.Join(h.configDir(), extFile(e.Name, e.SeqNo, "settings"))
	if !has {
		return writeFile(name, nil, 0o600)
	}
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
	return writeFile(name, buf.Bytes(), 0o600)
}

// extFile names an extension's settings or status file: <seq>.<kind>, or
// <ext>.<seq>.<kind> for an extension of a multi-config handler.
func extFile(ext string, seq int, kind string) string {
	if ext == "" {
		return strconv.Itoa(seq) + "." + kind
	}
	return ext + "." + strconv.Itoa(seq) + "." + kind
}

// mrseqPath is where the handler keeps the sequence number it last ran
// for ext: mrseq, or <ext>.mrseq for an extension of a multi-config handler.
func (h *handler) mrseqPath(ext string) string {
	if ext == "" {
		return filepath.Join(h.dir, "mrseq")
	}
	return filepath.Join(h.dir, ext+".mrseq")
}

// lastSeq is the highest sequence number of ext's settings files, the
// one the agent last gave it, or -1.
func (h *handler) lastSeq(ext string) int {
	entries, _ := os.ReadDir(h.configDir())
	last := -1
	for _, e := range entries {
		rest, ok := strings.CutSuffix(e.Name(), ".settings")
		if ext != "" {
			rest, ok = strings.CutPrefix(rest, ext+".")
		}
		if n, err := strconv.Atoi(rest); ok && err == nil && n > last {
			last = n
		}
	}
	return last
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
	if err := copyFiles(from.statusDir(), h.statusDir(), func(string) bool { return true }); err != nil {
		return err
	}
	return copyFiles(from.dir, h.dir, func(name string) bool { return name == "mrseq" || strings.HasSuffix(name, ".mrseq") })
}

// copyFiles copies the regular files of dir from that match into dir to.
func copyFiles(from, to string, match func(name string) bool) error {
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		if !e.Type().IsRegular() || !match(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err == nil {
			err = writeFile(filepath.Join(to, e.Name()), b, 0o644)
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
