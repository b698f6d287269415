//go:build e2e

package e2e

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/agent/certs"
	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/internal/wiresim"
)

// Microsoft's CustomScript handler, unchanged, from ../shared/fixtures
// (see its README; beside the main checkout when this is a worktree):
// the extension of the proof.
const (
	customScriptName    = "Microsoft.Azure.Extensions.CustomScript"
	customScriptVersion = "2.1.19"
	// shellHandlerName is the project's own shell-only handler, run where
	// CustomScript's package is absent.
	shellHandlerName = "Vhdprep.E2E.CustomScript"
)

const (
	markerFile = "/var/tmp/vhdprep-e2e-marker"
	markerText = "protected command ran"
	// enableLimit is the agent's enable limit in the test
	// (Extensions.EnableTimeout); CustomScript's script outlives it.
	enableLimit = 20 * time.Second
	// longScript is the script CustomScript downloads from fileUris: it
	// runs past the enable limit, as a detached worker may.
	longScript = "echo " + markerText + " > " + markerFile + "\nsleep 35\necho e2e-extension-ok\n"
	// decryptAndRun is the shell handler's public script: it decrypts its
	// protectedSettings with the certificate and key the agent wrote, as
	// real extensions do, and runs the commandToExecute inside.
	decryptAndRun = `s=config/$ConfigSequenceNumber.settings
thumb=$(sed -n 's/.*"protectedSettingsCertThumbprint":"\([^"]*\)".*/\1/p' "$s")
cmd=$(sed -n 's/.*"protectedSettings":"\([^"]*\)".*/\1/p' "$s" | base64 -d |
  openssl smime -decrypt -binary -inform DER -recip ../$thumb.crt -inkey ../$thumb.prv |
  sed -n 's/.*"commandToExecute":"\([^"]*\)".*/\1/p')
[ -n "$cmd" ] && sh -c "$cmd" && echo e2e-extension-ok`
)

// extension publishes an extension on the simulator whose
// protectedSettings are encrypted to a tenant certificate the goal
// state's Certificates document delivers, and follows its status.
type extension struct {
	sim        *wiresim.Server
	dir        string
	cert       string // the tenant certificate's PEM file
	thumbprint string
	name       string
	version    string
	real       bool // Microsoft's CustomScript, not the shell handler
}

func newExtension(t *testing.T, sim *wiresim.Server, dir string) *extension {
	certFile, keyFile, pfxFile := filepath.Join(dir, "tenant.crt"), filepath.Join(dir, "tenant.key"), filepath.Join(dir, "tenant.pfx")
	openssl(t, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=vhdprep-e2e-tenant", "-days", "1",
		"-keyout", keyFile, "-out", certFile)
	// The wire server's PFX: legacy PBE, empty password.
	openssl(t, "pkcs12", "-export", "-in", certFile, "-inkey", keyFile, "-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES",
		"-macalg", "sha1", "-passout", "pass:", "-out", pfxFile)
	pfx, err := os.ReadFile(pfxFile)
	if err != nil {
		t.Fatal(err)
	}
	sim.SetCertificatesPFX(pfx)
	e := &extension{sim: sim, dir: dir, cert: certFile, thumbprint: certs.Thumbprint(parseCert(t, certFile).Raw)}

	customScriptZip := filepath.Join(testimage.SharedDir(testimage.RepoRoot(t)), "fixtures", "customscript", "custom-script-extension.zip")
	pkg, err := os.ReadFile(customScriptZip)
	switch {
	case err == nil:
		e.name, e.version, e.real = customScriptName, customScriptVersion, true
	case os.IsNotExist(err):
		t.Logf("Microsoft's CustomScript handler is not at %s (../shared/fixtures/customscript): the extension stages run the project's shell handler instead", customScriptZip)
		e.name, e.version, pkg = shellHandlerName, "1.0", extensiontest.CustomScript(t, shellHandlerName, "")
	default:
		t.Fatal(err)
	}
	base := sim.AdvertisedURL()
	sim.Handle("/e2e/handler.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	manifest := extensiontest.Manifest(map[string]string{e.version: base + "/e2e/handler.zip"})
	sim.Handle("/e2e/manifest.xml", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(manifest)) }))
	sim.Handle("/e2e/long-script.sh", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(longScript)) }))
	return e
}

// publish sets the goal state's ExtensionsConfig to the extension in
// state with sequence number seq, its protected commandToExecute
// encrypted to the tenant certificate, and starts incarnation.
func (e *extension) publish(t *testing.T, incarnation int, state string, seq int, command string) {
	plain := filepath.Join(e.dir, "protected.json")
	if err := os.WriteFile(plain, []byte(`{"commandToExecute":"`+command+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	envelope := openssl(t, "smime", "-encrypt", "-aes256", "-binary", "-outform", "DER", "-in", plain, e.cert)
	public := map[string]any{"fileUris": []string{e.sim.AdvertisedURL() + "/e2e/long-script.sh"}}
	if !e.real {
		public = map[string]any{"script": extensiontest.Script(decryptAndRun)}
	}
	e.sim.SetDocument("extensionsConfig", extensiontest.ExtensionsConfig(e.sim.StatusBlobURL(), "BlockBlob", extensiontest.Plugin{
		Name: e.name, Version: e.version, State: state, ManifestURL: e.sim.AdvertisedURL() + "/e2e/manifest.xml", SeqNo: seq,
		HandlerSettings: map[string]any{
			"protectedSettingsCertThumbprint": e.thumbprint,
			"protectedSettings":               base64.StdEncoding.EncodeToString(envelope),
			"publicSettings":                  public,
		},
	}))
	e.sim.SetIncarnation(incarnation)
}

// firstCommand is the first protected commandToExecute: CustomScript runs
// the script it downloaded from fileUris; the shell handler, which
// downloads nothing, leaves the marker itself.
func (e *extension) firstCommand() string {
	if e.real {
		return "sh long-script.sh"
	}
	return "echo " + markerText + " > " + markerFile
}

// waitSuccess waits for the status blob to report the handler Ready and
// its extension successful, with want in the message (CustomScript puts
// the script's stdout there).
func (e *extension) waitSuccess(ctx context.Context, t *testing.T, vm *machine, want string) {
	var last string
	vm.waitFor(ctx, "the extension's success with "+want+" in the status blob", func() bool {
		last = e.sim.HandlerStatus(e.name)
		return strings.HasPrefix(last, "Ready/success/") && strings.Contains(last, want)
	})
	t.Logf("status blob: %s %q", e.name, last)
}

// waitGone waits for the handler to leave the status blob.
func (e *extension) waitGone(ctx context.Context, vm *machine) {
	vm.waitFor(ctx, "the uninstalled extension to leave the status blob", func() bool {
		return e.sim.HandlerStatus(e.name) == ""
	})
}

func openssl(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("openssl", args...).Output()
	if err != nil {
		t.Fatalf("openssl %s: %v", args[0], err)
	}
	return out
}

func parseCert(t *testing.T, file string) *x509.Certificate {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM certificate", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
