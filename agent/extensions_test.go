package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vhdprep/vhdprep/agent/certs"
	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
	"github.com/vhdprep/vhdprep/agent/provision"
	"github.com/vhdprep/vhdprep/internal/testimage"
)

const testHandler = "Vhdprep.Test.CustomScript"

// extensionsConfig is an ExtensionsConfig with the test handler at seq.
func extensionsConfig(base, statusBlob string, seq int, protected, thumb, script string) string {
	return extensiontest.ExtensionsConfig(statusBlob, "PageBlob", extensiontest.Plugin{
		Name: testHandler, Version: "1.0", State: "enabled", ManifestURL: base + "/manifests/cs.xml", SeqNo: seq,
		HandlerSettings: map[string]any{"protectedSettingsCertThumbprint": thumb, "protectedSettings": protected,
			"publicSettings": map[string]string{"script": extensiontest.Script(script)}},
	})
}

// TestDaemonRunsExtensionsWithProtectedSettings runs the daemon against the
// simulator: the goal state's certificates are written before the handler
// runs, the handler decrypts its protectedSettings with the .crt/.prv the
// agent wrote (openssl smime, as real extensions do), its status reaches
// the page blob, and a new incarnation enables it again with its seqNo.
func TestDaemonRunsExtensionsWithProtectedSettings(t *testing.T) {
	testimage.RequireTools(t, "openssl")
	e := newEnv(t)
	waagent := filepath.Join(e.root, provision.WaagentDir)
	transport, err := certs.NewTransport(waagent)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, _ := sshCertificate(t)
	thumb := certs.Thumbprint(cert.Raw)
	e.sim.SetDocument("certificates", certificatesFor(t, transport.CertificatePEM(), cert, key))

	// protectedSettings as the portal makes them: a CMS envelope to the tenant certificate.
	dir := t.TempDir()
	certFile, plainFile := filepath.Join(dir, "tenant.crt"), filepath.Join(dir, "settings.json")
	mustWrite(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	const secret = `{"commandToExecute":"echo top secret"}`
	mustWrite(t, plainFile, secret)
	envelope, err := exec.Command("openssl", "smime", "-encrypt", "-des3", "-binary", "-outform", "DER", "-in", plainFile, certFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	decrypt := `s=config/$ConfigSequenceNumber.settings
thumb=$(sed -n 's/.*"protectedSettingsCertThumbprint":"\([^"]*\)".*/\1/p' "$s")
sed -n 's/.*"protectedSettings":"\([^"]*\)".*/\1/p' "$s" | base64 -d |
  openssl smime -decrypt -binary -inform DER -recip ../$thumb.crt -inkey ../$thumb.prv > protected.json && echo decrypted`
	protected := base64.StdEncoding.EncodeToString(envelope)

	pkg := extensiontest.CustomScript(t, testHandler, "")
	e.sim.Handle("/packages/cs-1.0.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	manifest := extensiontest.Manifest(map[string]string{"1.0": e.sim.URL() + "/packages/cs-1.0.zip"})
	e.sim.Handle("/manifests/cs.xml", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(manifest)) }))
	e.sim.SetDocument("extensionsConfig", extensionsConfig(e.sim.URL(), e.sim.StatusBlobURL(), 0, protected, thumb, decrypt))

	var logs syncBuffer
	e.agent.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.agent.Extensions = NewExtensionProcessor(e.root, e.agent.Wire, e.agent.Log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent.Daemon(ctx) }()
	defer cancel()

	handlerDir := filepath.Join(waagent, testHandler+"-1.0")
	waitFor(t, func() bool {
		return lastHandlerStatus(e) == "Ready/success/decrypted"
	})
	if b, err := os.ReadFile(filepath.Join(handlerDir, "protected.json")); err != nil || string(b) != secret {
		t.Fatalf("decrypted protectedSettings %q (%v), want %q", b, err, secret)
	}
	for _, log := range []string{"/var/log/vhdprep-agent.log"} {
		if b, _ := os.ReadFile(filepath.Join(e.root, log)); strings.Contains(string(b), protected[:40]) {
			t.Errorf("%s holds the protected settings", log)
		}
	}

	e.sim.SetDocument("extensionsConfig", extensionsConfig(e.sim.URL(), e.sim.StatusBlobURL(), 1, protected, thumb, "echo second"))
	e.sim.SetIncarnation(2)
	waitFor(t, func() bool { return lastHandlerStatus(e) == "Ready/success/second" })
	b, _ := os.ReadFile(filepath.Join(waagent, "calls.log"))
	if got := strings.Count(string(b), "install 1.0"); got != 1 || !strings.Contains(string(b), "enable 1.0 seq=1") {
		t.Errorf("calls:\n%s\nwant one install and an enable with seq 1", b)
	}
	// A new incarnation with the same extensions runs nothing again.
	e.sim.SetIncarnation(3)
	waitFor(t, func() bool { return strings.Contains(logs.String(), `msg="extensions unchanged" incarnation=3`) })
	if after, _ := os.ReadFile(filepath.Join(waagent, "calls.log")); string(after) != string(b) {
		t.Errorf("an unchanged ExtensionsConfig ran the handler again:\n%s", after)
	}
	cancel()
	<-done
	if strings.Contains(logs.String(), protected[:32]) || strings.Contains(logs.String(), "top secret") {
		t.Error("the log holds the protected settings")
	}
	if !strings.Contains(logs.String(), "processing extensions") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// lastHandlerStatus is "<handler status>/<extension status>/<message>" of
// the test handler in the latest uploaded status document.
func lastHandlerStatus(e *env) string { return e.sim.HandlerStatus(testHandler) }

// syncBuffer is a log sink the daemon's goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestExtensionsDisabledReportsEachFailed: with Extensions.Enabled=n no
// handler is downloaded or run, and each is reported failed with the
// reason, as WALinuxAgent does, so Azure does not wait for its timeout.
func TestExtensionsDisabledReportsEachFailed(t *testing.T) {
	e := newEnv(t)
	e.sim.SetDocument("extensionsConfig", extensionsConfig(e.sim.URL(), e.sim.StatusBlobURL(), 3, "", "", "echo ran"))
	e.agent.Config.ExtensionsEnabled = false
	e.agent.Extensions = NewExtensionProcessor(e.root, e.agent.Wire, e.agent.Log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent.Daemon(ctx) }()
	defer func() { cancel(); <-done }()

	want := "NotReady/error/Enable: extension '" + testHandler + "' will not be processed: " + extensionsDisabled
	waitFor(t, func() bool { return lastHandlerStatus(e) == want })
	if !strings.Contains(want, "Extensions.Enabled=y in /etc/vhdprep-agent.conf") {
		t.Errorf("message %q does not say how to enable extensions", want)
	}
	for _, r := range e.sim.Requests() {
		if strings.Contains(r.Path, "manifests") || strings.Contains(r.Path, "packages") {
			t.Errorf("fetched %s with extensions disabled", r.Path)
		}
	}
	if _, err := os.Stat(filepath.Join(e.root, provision.WaagentDir, testHandler+"-1.0")); !os.IsNotExist(err) {
		t.Errorf("handler directory made with extensions disabled: %v", err)
	}
}

// TestDaemonWaitsForTheHoldToLift: while the InVMArtifactsProfileBlob says
// onHold no handler runs, and when it lifts, without a new incarnation,
// the held ExtensionsConfig is processed.
func TestDaemonWaitsForTheHoldToLift(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	hold, profileReads := true, 0
	e.sim.Handle("/profile", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		profileReads++
		fmt.Fprintf(w, `{"onHold": %v}`, hold)
	}))
	pkg := extensiontest.CustomScript(t, testHandler, "")
	e.sim.Handle("/packages/cs-1.0.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	manifest := extensiontest.Manifest(map[string]string{"1.0": e.sim.URL() + "/packages/cs-1.0.zip"})
	e.sim.Handle("/manifests/cs.xml", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(manifest)) }))
	doc := extensiontest.ExtensionsConfig(e.sim.StatusBlobURL(), "BlockBlob", extensiontest.Plugin{
		Name: testHandler, Version: "1.0", State: "enabled", ManifestURL: e.sim.URL() + "/manifests/cs.xml",
		HandlerSettings: map[string]any{"publicSettings": map[string]string{"commandToExecute": "echo released"}},
	})
	doc = strings.Replace(doc, "</StatusUploadBlob>", "</StatusUploadBlob><InVMArtifactsProfileBlob>"+e.sim.URL()+"/profile</InVMArtifactsProfileBlob>", 1)
	e.sim.SetDocument("extensionsConfig", doc)

	e.agent.Extensions = NewExtensionProcessor(e.root, e.agent.Wire, e.agent.Log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent.Daemon(ctx) }()
	defer func() { cancel(); <-done }()

	reads := func() int { mu.Lock(); defer mu.Unlock(); return profileReads }
	waitFor(t, func() bool { return reads() >= 3 })
	calls := filepath.Join(e.root, provision.WaagentDir, "calls.log")
	if _, err := os.Stat(calls); err == nil {
		t.Fatal("a handler ran while the extensions were on hold")
	}
	if got := lastHandlerStatus(e); got != "" {
		t.Fatalf("status %q while on hold, want no handler status", got)
	}
	extensionsConfigReads := func() (n int) {
		for _, r := range e.sim.Requests() {
			if strings.Contains(r.Path, "extensionsConfig") {
				n++
			}
		}
		return n
	}
	if n := extensionsConfigReads(); n != 1 {
		t.Errorf("ExtensionsConfig fetched %d times while on hold, want once (the hold alone is read again)", n)
	}

	mu.Lock()
	hold = false
	mu.Unlock()
	waitFor(t, func() bool { return lastHandlerStatus(e) == "Ready/success/released" })
	if inc := e.sim.Incarnation(); inc != 1 {
		t.Fatalf("incarnation moved to %d; the hold must lift without one", inc)
	}
}

// TestDaemonKeepsReportingWhileAHandlerRuns: while a handler's enable runs,
// the daemon keeps polling goal states, reporting health for a new
// incarnation and uploading status; the new goal state's extensions wait
// until the running one is done, then run.
func TestDaemonKeepsReportingWhileAHandlerRuns(t *testing.T) {
	e := newEnv(t)
	waagent := filepath.Join(e.root, provision.WaagentDir)
	pkg := extensiontest.CustomScript(t, testHandler, "")
	e.sim.Handle("/packages/cs-1.0.zip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	manifest := extensiontest.Manifest(map[string]string{"1.0": e.sim.URL() + "/packages/cs-1.0.zip"})
	e.sim.Handle("/manifests/cs.xml", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(manifest)) }))
	// Enable blocks until the test creates ../release.
	const script = `echo start $ConfigSequenceNumber >> ../order.log
while [ ! -e ../release ]; do sleep 0.01; done
echo end $ConfigSequenceNumber >> ../order.log; echo released`
	e.sim.SetDocument("extensionsConfig", extensionsConfig(e.sim.URL(), e.sim.StatusBlobURL(), 0, "", "", script))

	e.agent.Extensions = NewExtensionProcessor(e.root, e.agent.Wire, e.agent.Log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent.Daemon(ctx) }()
	defer func() { cancel(); <-done }()

	order := func() string { b, _ := os.ReadFile(filepath.Join(waagent, "order.log")); return string(b) }
	waitFor(t, func() bool { return order() == "start 0\n" })
	uploads := len(e.sim.StatusUploads())
	e.sim.SetDocument("extensionsConfig", extensionsConfig(e.sim.URL(), e.sim.StatusBlobURL(), 1, "", "", script))
	e.sim.SetIncarnation(2)
	waitFor(t, func() bool {
		h := e.sim.Health()
		return h[len(h)-1].Incarnation == "2" && len(e.sim.StatusUploads()) > uploads+3
	})
	if got := lastHandlerStatus(e); !strings.HasPrefix(got, "NotReady/transitioning/") {
		t.Errorf("status while enable runs: %q, want NotReady/transitioning", got)
	}
	if got := order(); got != "start 0\n" {
		t.Fatalf("order.log while the first enable runs:\n%s\nthe new goal state must wait for it", got)
	}

	mustWrite(t, filepath.Join(waagent, "release"), "")
	waitFor(t, func() bool {
		return lastHandlerStatus(e) == "Ready/success/released" && order() == "start 0\nend 0\nstart 1\nend 1\n"
	})
	if b, _ := os.ReadFile(filepath.Join(waagent, "calls.log")); !strings.Contains(string(b), "enable 1.0 seq=1") {
		t.Errorf("calls:\n%s\nwant the queued goal state's enable with seq 1", b)
	}
}
