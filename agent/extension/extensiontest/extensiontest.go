// Package extensiontest builds extension handler packages for tests: zips
// of given files, and a shell-only Custom-Script-like handler.
package extensiontest

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
)

// Entry is one file of a test package.
type Entry struct {
	Name string
	Body string
	Mode fs.FileMode // 0644 when zero
}

// Zip builds a handler package from entries, in order.
func Zip(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.Name, Method: zip.Deflate}
		mode := e.Mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.Body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// CustomScript is a shell-only handler named name. Every command appends
// "<op> <version> seq=... from=... uninstallrc=... disablerc=... ext=..." to
// calls.log beside the handler directory. Enable runs the settings'
// commandToExecute, or "script" (base64) when given, in the handler
// directory, and writes status/<seq>.status unless the command wrote one:
// success or error by its exit code, its output as the message. Run as a
// multi-config handler (ConfigExtensionName set), it reads
// config/<ext>.<seq>.settings and writes status/<ext>.<seq>.status.
// Like Microsoft's handlers (their HandlerUtil), it keeps the sequence
// number it last enabled successfully in mrseq (<ext>.mrseq) and skips
// enable for a sequence number not above it.
// manifestExtra is appended to handlerManifest's members (",\"updateMode\":...").
func CustomScript(t testing.TB, name, manifestExtra string) []byte {
	t.Helper()
	logLine := `echo "$1 $AZURE_GUEST_AGENT_EXTENSION_VERSION seq=$ConfigSequenceNumber from=$AZURE_GUEST_AGENT_UPDATING_FROM_VERSION uninstallrc=$AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE disablerc=$AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE ext=$ConfigExtensionName" >> ../calls.log` + "\n"
	enable := `f=${ConfigExtensionName:+$ConfigExtensionName.}$ConfigSequenceNumber
mr=${ConfigExtensionName:+$ConfigExtensionName.}mrseq
if [ -f "$mr" ] && [ "$(cat "$mr")" -ge "$ConfigSequenceNumber" ]; then echo "sequence $ConfigSequenceNumber already processed"; exit 0; fi
s=config/$f.settings
cmd=$(sed -n 's/.*"commandToExecute":"\([^"]*\)".*/\1/p' "$s")
script=$(sed -n 's/.*"script":"\([^"]*\)".*/\1/p' "$s")
[ -z "$script" ] || cmd=$(printf %s "$script" | base64 -d)
out=$(sh -c "$cmd" 2>&1); rc=$?; out=$(printf %s "$out" | tr '\n"' '  ')
st=success; [ $rc -eq 0 ] || st=error
[ -f status/$f.status ] || printf '[{"version":"1.0","timestampUTC":"2026-01-01T00:00:00Z","status":{"name":"%s","operation":"Enable","status":"%s","code":%d,"formattedMessage":{"lang":"en-US","message":"%s"}}}]' "` + name + `" "$st" "$rc" "$out" > status/$f.status
echo "enable ran: $out"
[ $rc -ne 0 ] || printf %s "$ConfigSequenceNumber" > "$mr"
exit $rc
`
	manifest := `[{"name":"` + name + `","version":1.0,"handlerManifest":{"installCommand":"./handler.sh install","uninstallCommand":"./handler.sh uninstall","updateCommand":"./handler.sh update","enableCommand":"./handler.sh enable","disableCommand":"./handler.sh disable"` + manifestExtra + `}}]`
	handler := "#!/bin/sh\n" + logLine + `[ "$1" = enable ] || exit 0` + "\n" + enable
	return Zip(t,
		Entry{Name: "HandlerManifest.json", Body: manifest},
		Entry{Name: "handler.sh", Body: handler, Mode: 0o755},
	)
}

// Script encodes a shell script for CustomScript's "script" setting.
func Script(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Plugin is one handler of an ExtensionsConfig.
type Plugin struct {
	Name, Version, State string
	ManifestURL          string
	SeqNo, Level         int
	// HandlerSettings is the handlerSettings object (publicSettings,
	// protectedSettings, protectedSettingsCertThumbprint).
	HandlerSettings map[string]any
	// Extensions, when given, make this a multi-config handler: its
	// settings are these ExtensionRuntimeSettings instead of SeqNo, Level
	// and HandlerSettings.
	Extensions []Extension
}

// Extension is one extension of a multi-config handler.
type Extension struct {
	Name, State     string // State "" is enabled
	SeqNo, Level    int
	HandlerSettings map[string]any
}

// ExtensionsConfig is the wire server's ExtensionsConfig for plugins, with
// its status going to statusBlobURL as a blobType blob.
func ExtensionsConfig(statusBlobURL, blobType string, plugins ...Plugin) string {
	var ps, ss strings.Builder
	for _, p := range plugins {
		fmt.Fprintf(&ps, `<Plugin name="%s" version="%s" location="%s" state="%s" autoUpgrade="false" />`, p.Name, p.Version, xmlText(p.ManifestURL), p.State)
		if len(p.Extensions) == 0 {
			fmt.Fprintf(&ss, `<Plugin name="%s" version="%s"><DependsOn dependencyLevel="%d"/><RuntimeSettings seqNo="%d">%s</RuntimeSettings></Plugin>`,
				p.Name, p.Version, p.Level, p.SeqNo, runtimeSettings(p.HandlerSettings))
			continue
		}
		fmt.Fprintf(&ss, `<Plugin name="%s" version="%s">`, p.Name, p.Version)
		for _, e := range p.Extensions {
			fmt.Fprintf(&ss, `<DependsOn dependencyLevel="%d" name="%s"/>`, e.Level, e.Name)
		}
		for _, e := range p.Extensions {
			state := e.State
			if state == "" {
				state = "enabled"
			}
			fmt.Fprintf(&ss, `<ExtensionRuntimeSettings seqNo="%d" name="%s" state="%s">%s</ExtensionRuntimeSettings>`,
				e.SeqNo, e.Name, state, runtimeSettings(e.HandlerSettings))
		}
		ss.WriteString(`</Plugin>`)
	}
	return `<?xml version="1.0" encoding="utf-8"?><Extensions version="1.0.0.0" goalStateIncarnation="1"><Plugins>` + ps.String() +
		`</Plugins><PluginSettings>` + ss.String() + `</PluginSettings><StatusUploadBlob statusBlobType="` + blobType + `">` +
		xmlText(statusBlobURL) + `</StatusUploadBlob></Extensions>`
}

// runtimeSettings is the XML text of a runtimeSettings document holding hs.
func runtimeSettings(hs map[string]any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(map[string]any{"runtimeSettings": []any{map[string]any{"handlerSettings": hs}}})
	return xmlText(strings.TrimSpace(b.String()))
}

// Manifest is a plugin manifest listing each version's package URL.
func Manifest(packages map[string]string) string {
	var b strings.Builder
	b.WriteString("<PluginVersionManifest><Plugins>")
	for _, v := range slices.Sorted(maps.Keys(packages)) {
		fmt.Fprintf(&b, "<Plugin><Version>%s</Version><Uris><Uri>%s</Uri></Uris></Plugin>", v, xmlText(packages[v]))
	}
	b.WriteString("</Plugins></PluginVersionManifest>")
	return b.String()
}

func xmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
