package certs

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/wire"
	"github.com/vhdprep/vhdprep/internal/testimage"
	"github.com/vhdprep/vhdprep/internal/wiresim"
)

func TestNewTransportCreatesAndReloads(t *testing.T) {
	dir := t.TempDir()
	tr, err := NewTransport(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := tr.cert
	want := sha1.Sum(x509.MarshalPKCS1PublicKey(&tr.key.PublicKey))
	if !bytes.Equal(c.SubjectKeyId, want[:]) {
		t.Errorf("SubjectKeyId %x, want the SHA-1 of the public key %x", c.SubjectKeyId, want)
	}
	if tr.key.N.BitLen() != 2048 {
		t.Errorf("key of %d bits", tr.key.N.BitLen())
	}
	for _, f := range []string{TransportKeyFile, TransportCertFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, st.Mode(), err)
		}
	}
	again, err := NewTransport(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.CertificatePEM(), tr.CertificatePEM()) {
		t.Error("a second NewTransport made a new certificate")
	}
	// A key that is not the certificate's is refused, naming the fix.
	other, err := NewTransport(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, TransportCertFile), other.CertificatePEM(), 0o600)
	if _, err := NewTransport(dir); err == nil || !strings.Contains(err.Error(), "delete both transport files") {
		t.Errorf("mismatched pair: %v", err)
	}
}

// openssl runs openssl with args in dir.
func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// writeTransport writes tr's certificate and key as PEM files in dir.
func writeTransport(t *testing.T, dir string, tr *Transport) {
	t.Helper()
	der, _ := x509.MarshalPKCS8PrivateKey(tr.key)
	os.WriteFile(filepath.Join(dir, "t.crt"), tr.CertificatePEM(), 0o600)
	os.WriteFile(filepath.Join(dir, "t.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// TestDecryptOpenSSLEnvelopes decrypts envelopes openssl makes to the
// transport certificate in each form the wire server and extensions'
// settings use.
func TestDecryptOpenSSLEnvelopes(t *testing.T) {
	testimage.RequireTools(t, "openssl")
	dir := t.TempDir()
	tr, err := NewTransport(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeTransport(t, dir, tr)
	secret := []byte(`{"commandToExecute":"echo secret"}`)
	os.WriteFile(filepath.Join(dir, "plain"), secret, 0o600)
	for name, args := range map[string][]string{
		"smime 3DES issuer+serial": {"smime", "-encrypt", "-des3", "-binary", "-outform", "DER", "-in", "plain", "-out", "env", "t.crt"},
		"cms OAEP AES-128 SKI":     {"cms", "-encrypt", "-aes128", "-binary", "-outform", "DER", "-keyid", "-recip", "t.crt", "-keyopt", "rsa_padding_mode:oaep", "-in", "plain", "-out", "env"},
		"cms AES-256 SKI":          {"cms", "-encrypt", "-aes256", "-binary", "-outform", "DER", "-keyid", "-recip", "t.crt", "-in", "plain", "-out", "env"},
		"cms 3DES OAEP":            {"cms", "-encrypt", "-des3", "-binary", "-outform", "DER", "-recip", "t.crt", "-keyopt", "rsa_padding_mode:oaep", "-in", "plain", "-out", "env"},
	} {
		t.Run(name, func(t *testing.T) {
			openssl(t, dir, args...)
			env, _ := os.ReadFile(filepath.Join(dir, "env"))
			got, err := decryptEnvelope(env, tr.cert, tr.key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatalf("got %q", got)
			}
			// Extensions' path: base64 settings with the files WriteAll writes.
			keyPEM, _ := os.ReadFile(filepath.Join(dir, "t.key"))
			got, err = DecryptSettings(base64.StdEncoding.EncodeToString(env), tr.CertificatePEM(), keyPEM)
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("DecryptSettings: %q, %v", got, err)
			}
			// Another certificate is not a recipient.
			other, _ := NewTransport(t.TempDir())
			if _, err := decryptEnvelope(env, other.cert, other.key); !errors.Is(err, ErrNotForUs) {
				t.Errorf("other certificate: %v", err)
			}
		})
	}
}

// TestDecryptCertificatesPFX builds a Certificates document as the wire
// server does (a PFX with two certificates, the key of the second only,
// in a CMS envelope to the transport certificate) and decrypts it.
func TestDecryptCertificatesPFX(t *testing.T) {
	testimage.RequireTools(t, "openssl")
	dir := t.TempDir()
	tr, err := NewTransport(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeTransport(t, dir, tr)
	for _, n := range []string{"a", "b"} {
		openssl(t, dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN="+n, "-days", "1", "-keyout", n+".key", "-out", n+".crt")
	}
	chain, _ := os.ReadFile(filepath.Join(dir, "a.crt"))
	os.WriteFile(filepath.Join(dir, "extra.crt"), chain, 0o600)
	openssl(t, dir, "pkcs12", "-export", "-passout", "pass:", "-in", "b.crt", "-inkey", "b.key", "-certfile", "extra.crt",
		"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-out", "tenant.pfx")
	openssl(t, dir, "cms", "-encrypt", "-aes128", "-binary", "-outform", "DER", "-keyid", "-recip", "t.crt", "-keyopt", "rsa_padding_mode:oaep", "-in", "tenant.pfx", "-out", "env")
	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	doc := "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<CertificateFile><Version>2012-11-30</Version><Incarnation>1</Incarnation><Format>Pkcs7BlobWithPfxContents</Format><Data>" +
		base64.StdEncoding.EncodeToString(env) + "</Data></CertificateFile>"
	pairs, err := tr.Decrypt([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	thumb := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		p, _ := pem.Decode(b)
		return Thumbprint(p.Bytes)
	}
	byThumb := map[string]Pair{}
	for _, p := range pairs {
		byThumb[p.Thumbprint] = p
	}
	a, b := byThumb[thumb("a.crt")], byThumb[thumb("b.crt")]
	if len(pairs) != 2 || a.CertPEM == nil || b.CertPEM == nil {
		t.Fatalf("pairs %v", thumbprints(pairs))
	}
	if a.KeyPEM != nil || b.KeyPEM == nil {
		t.Fatalf("keys: a %v b %v, want b's only", a.KeyPEM != nil, b.KeyPEM != nil)
	}
	out := t.TempDir()
	if err := WriteAll(out, pairs); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, a.Thumbprint+".prv")); !os.IsNotExist(err) {
		t.Errorf("a .prv for a certificate without a key: %v", err)
	}
	// The written pair is what an extension uses: openssl decrypts settings
	// encrypted to b.crt with b's .prv.
	os.WriteFile(filepath.Join(dir, "plain"), []byte("s3cret"), 0o600)
	openssl(t, dir, "smime", "-encrypt", "-des3", "-binary", "-outform", "DER", "-in", "plain", "-out", "settings", "b.crt")
	openssl(t, dir, "smime", "-decrypt", "-binary", "-inform", "DER", "-in", "settings", "-inkey", filepath.Join(out, b.Thumbprint+".prv"), "-out", "plain2")
	if got, _ := os.ReadFile(filepath.Join(dir, "plain2")); string(got) != "s3cret" {
		t.Errorf("openssl with the written key: %q", got)
	}
}

func TestDecryptRefusals(t *testing.T) {
	tr, err := NewTransport(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"not PFX":    `<CertificateFile><Format>CertificatesNonPfxPackage</Format><Data>NotPFXData</Data></CertificateFile>`,
		"not base64": `<CertificateFile><Format>Pkcs7BlobWithPfxContents</Format><Data>!!</Data></CertificateFile>`,
		"not CMS":    `<CertificateFile><Data>AAAA</Data></CertificateFile>`,
		"not XML":    `{}`,
	} {
		if _, err := tr.Decrypt([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := tr.Decrypt([]byte(`<CertificateFile><Format>X</Format></CertificateFile>`)); !errors.Is(err, ErrNotPFX) {
		t.Errorf("format X: %v", err)
	}
	if err := WriteAll(t.TempDir(), []Pair{{Thumbprint: "../x"}}); err == nil {
		t.Error("WriteAll took a thumbprint that is a path")
	}
}

func FuzzDecryptEnvelope(f *testing.F) {
	tr, err := NewTransport(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	// Seeds: a hand-made envelope shape (SKI recipient, OAEP, AES-128) and
	// an issuer+serial one; fuzzing explores the decoder around them.
	f.Add(seedEnvelope(f, tr, true))
	f.Add(seedEnvelope(f, tr, false))
	f.Fuzz(func(t *testing.T, der []byte) {
		decryptEnvelope(der, tr.cert, tr.key)
	})
}

func seedEnvelope(f *testing.F, tr *Transport, legacy bool) []byte {
	env, err := wiresim.EncryptEnvelope(tr.cert, []byte("seed"), legacy)
	if err != nil {
		f.Fatal(err)
	}
	return env
}

// TestCertificatesFromWireSim fetches Certificates as the agent does, with
// both ciphers, from the simulator, which encrypts to the transport
// certificate of the request, and decrypts them.
func TestCertificatesFromWireSim(t *testing.T) {
	testimage.RequireTools(t, "openssl")
	dir := t.TempDir()
	openssl(t, dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=tenant", "-days", "1", "-keyout", "k.pem", "-out", "c.pem")
	openssl(t, dir, "pkcs12", "-export", "-passout", "pass:", "-in", "c.pem", "-inkey", "k.pem",
		"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-out", "t.pfx")
	pfx, _ := os.ReadFile(filepath.Join(dir, "t.pfx"))
	cpem, _ := os.ReadFile(filepath.Join(dir, "c.pem"))
	b, _ := pem.Decode(cpem)
	want := Thumbprint(b.Bytes)

	s := wiresim.New()
	defer s.Close()
	s.SetCertificatesPFX(pfx)
	c := wire.New(s.Endpoint(), wire.Options{Retry: wire.Retry{Initial: 1, Max: 1, Attempts: 2}})
	g, err := c.GoalState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTransport(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, legacy := range []bool{false, true} {
		if legacy {
			s.Fail(1, 400, "/machine/") // AES refused: the client asks for 3DES
		}
		doc, err := c.Certificates(context.Background(), g, tr.CertificatePEM())
		if err != nil {
			t.Fatal(err)
		}
		pairs, err := tr.Decrypt(doc)
		if err != nil {
			t.Fatalf("legacy %v: %v", legacy, err)
		}
		if len(pairs) != 1 || pairs[0].Thumbprint != want || pairs[0].KeyPEM == nil {
			t.Fatalf("legacy %v: pairs %v, want %s with its key", legacy, thumbprints(pairs), want)
		}
	}
}
