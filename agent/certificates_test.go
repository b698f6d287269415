package agent

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/agent/certs"
	"github.com/vhdprep/vhdprep/agent/provision"
	"github.com/vhdprep/vhdprep/internal/testimage"
	"golang.org/x/crypto/ssh"
)

// certificatesFor returns a Certificates document as the wire server makes
// it: a PFX holding cert, in a CMS envelope to the transport certificate
// transportPEM (made by openssl, an implementation independent of ours).
func certificatesFor(t *testing.T, transportPEM []byte, cert *x509.Certificate, key *rsa.PrivateKey) string {
	t.Helper()
	testimage.RequireTools(t, "openssl")
	dir := t.TempDir()
	certFile, transportFile := filepath.Join(dir, "tenant.crt"), filepath.Join(dir, "transport.crt")
	mustWrite(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	mustWrite(t, transportFile, string(transportPEM))
	keyFile := filepath.Join(dir, "tenant.key")
	mustWrite(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	run := func(args ...string) []byte {
		out, err := exec.Command("openssl", args...).Output()
		if err != nil {
			t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	// The wire server's PFX uses the legacy PBE, with an empty password.
	pfx := filepath.Join(dir, "tenant.pfx")
	run("pkcs12", "-export", "-in", certFile, "-inkey", keyFile, "-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-passout", "pass:", "-out", pfx)
	envelope := run("smime", "-encrypt", "-des3", "-binary", "-outform", "DER", "-in", pfx, transportFile)
	return `<?xml version="1.0" encoding="utf-8"?><CertificateFile><Version>2012-11-30</Version><Incarnation>1</Incarnation>` +
		`<Format>Pkcs7BlobWithPfxContents</Format><Data>` + base64.StdEncoding.EncodeToString(envelope) + `</Data></CertificateFile>`
}

// sshCertificate is a self-signed certificate and its key, as a tenant's
// SSH key reaches the VM when ovf-env.xml gives it by fingerprint.
func sshCertificate(t *testing.T) (*x509.Certificate, *rsa.PrivateKey, ssh.PublicKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "tenant"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, sshPub
}

func TestProvisionKeyByFingerprintFromCertificates(t *testing.T) {
	e := newEnv(t)
	waagent := filepath.Join(e.root, provision.WaagentDir)
	transport, err := certs.NewTransport(waagent)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, sshPub := sshCertificate(t)
	thumb := certs.Thumbprint(cert.Raw)
	e.sim.SetDocument("certificates", certificatesFor(t, transport.CertificatePEM(), cert, key))
	byFingerprint := strings.Replace(ovfEnv, "<Fingerprint>EB0C0AB4B2D5FC35F2F0658D19F44C8283E2DD62</Fingerprint>", "<Fingerprint>"+thumb+"</Fingerprint>", 1)
	byFingerprint = byFingerprint[:strings.Index(byFingerprint, "<Value>")] + byFingerprint[strings.Index(byFingerprint, "</Value>")+len("</Value>"):]
	media := e.sys.Media[filepath.Join(e.root, "dev/sr0")]
	mustWrite(t, filepath.Join(media, "ovf-env.xml"), byFingerprint)

	if o, err := e.agent.Provision(context.Background()); err != nil || o != Provisioned {
		t.Fatalf("Provision = %v, %v", o, err)
	}
	for name, mode := range map[string]os.FileMode{thumb + ".crt": 0o644, thumb + ".prv": 0o600} {
		if info, err := os.Stat(filepath.Join(waagent, name)); err != nil || info.Mode().Perm() != mode {
			t.Fatalf("%s: %v, %v; want mode %v", name, info, err, mode)
		}
	}
	b, err := os.ReadFile(filepath.Join(e.root, "home/azureuser/.ssh/authorized_keys"))
	if want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))); err != nil || !strings.Contains(string(b), want) {
		t.Fatalf("authorized_keys %q (%v), want the certificate's key %q", b, err, want)
	}
}

func TestProvisionFailsWhenCertificatesDoNotDecrypt(t *testing.T) {
	e := newEnv(t)
	e.sim.SetDocument("certificates", `<CertificateFile><Format>Pkcs7BlobWithPfxContents</Format><Data>bm90IGEgQ01TIGVudmVsb3Bl</Data></CertificateFile>`)
	if _, err := e.agent.Provision(context.Background()); err == nil || !strings.Contains(err.Error(), "certificates") {
		t.Fatalf("Provision error %v, want one naming the certificates step", err)
	}
	if got := states(e.sim.Health()); !strings.Contains(got, "NotReady/ProvisioningFailed") {
		t.Errorf("reports: %s", got)
	}
}
