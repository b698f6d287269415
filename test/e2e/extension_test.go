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
	"testing"

	"github.com/vhdprep/vhdprep/agent/certs"
	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
	"github.com/vhdprep/vhdprep/internal/wiresim"
)

const (
	handlerName = "Vhdprep.E2E.CustomScript"
	markerFile  = "/var/tmp/vhdprep-e2e-marker"
	markerText  = "protected command ran"
	// decryptAndRun is the handler's public script: it decrypts its
	// protectedSettings with the certificate and key the agent wrote, as
	// real extensions do, and runs the commandToExecute inside.
	decryptAndRun = `s=config/$ConfigSequenceNumber.settings
thumb=$(sed -n 's/.*"protectedSettingsCertThumbprint":"\([^"]*\)".*/\1/p' "$s")
cmd=$(sed -n 's/.*"protectedSettings":"\([^"]*\)".*/\1/p' "$s" | base64 -d |
  openssl smime -decrypt -binary -inform DER -recip ../$thumb.crt -inkey ../$thumb.prv |
  sed -n 's/.*"commandToExecute":"\([^"]*\)".*/\1/p')
[ -n "$cmd" ] && sh -c "$cmd" && echo e2e-extension-ok`
)

// extension is a shell-only Custom-Script-like handler published on the
// simulator with protectedSettings encrypted to a tenant certificate that
// the goal state's Certificates document delivers.
type extension struct{ sim *wiresim.Server }

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

	plain := filepath.Join(dir, "protected.json")
	if err := os.WriteFile(plain, []byte(`{"commandToExecute":"echo `+markerText+` > `+markerFile+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	envelope := openssl(t, "smime", "-encrypt", "-aes256", "-binary", "-outform", "DER", "-in", plain, certFile)

	pkg := extensiontest.CustomScript(t, handlerName, "")
	base := sim.AdvertisedURL()
	sim.Handle("/e2e/handler.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	manifest := extensiontest.Manifest(map[string]string{"1.0": base + "/e2e/handler.zip"})
	sim.Handle("/e2e/manifest.xml", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(manifest)) }))
	sim.SetDocument("extensionsConfig", extensiontest.ExtensionsConfig(sim.StatusBlobURL(), "BlockBlob", extensiontest.Plugin{
		Name: handlerName, Version: "1.0", State: "enabled", ManifestURL: base + "/e2e/manifest.xml", SeqNo: 0,
		HandlerSettings: map[string]any{
			"protectedSettingsCertThumbprint": certs.Thumbprint(parseCert(t, certFile).Raw),
			"protectedSettings":               base64.StdEncoding.EncodeToString(envelope),
			"publicSettings":                  map[string]string{"script": extensiontest.Script(decryptAndRun)},
		},
	}))
	return &extension{sim}
}

// waitSuccess waits for the status blob to report the handler Ready and
// its extension successful, with the script's output as the message.
func (e *extension) waitSuccess(ctx context.Context, t *testing.T, vm *machine) {
	var last string
	vm.waitFor(ctx, "the extension's success in the status blob", func() bool {
		last = e.sim.HandlerStatus(handlerName)
		return last == "Ready/success/e2e-extension-ok"
	})
	t.Logf("status blob: %s %s", handlerName, last)
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
