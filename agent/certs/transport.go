// Package certs holds the guest agent's transport key pair, decrypts the
// wire server's Certificates document with it, and writes the tenant
// certificates and keys where extensions look for them, as WALinuxAgent
// does (azurelinuxagent/common/protocol/goal_state.py, Certificates).
package certs

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Transport key file names, WALinuxAgent's, in its directory
// (/var/lib/waagent).
const (
	TransportKeyFile  = "TransportPrivate.pem"
	TransportCertFile = "TransportCert.pem"
)

// Transport is the key pair the wire server encrypts certificates to.
type Transport struct {
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
}

// NewTransport loads the transport key and certificate from dir, or
// creates them (an RSA-2048 key and a self-signed certificate that carries
// a SubjectKeyIdentifier, by which the wire server names the recipient)
// when either file is missing. Both files are written 0600.
func NewTransport(dir string) (*Transport, error) {
	keyPath, certPath := filepath.Join(dir, TransportKeyFile), filepath.Join(dir, TransportCertFile)
	keyPEM, kerr := os.ReadFile(keyPath)
	certPEM, cerr := os.ReadFile(certPath)
	if errors.Is(kerr, fs.ErrNotExist) || errors.Is(cerr, fs.ErrNotExist) {
		t, err := newTransport()
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(t.key)
		if err != nil {
			return nil, fmt.Errorf("transport key: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("transport key: %w", err)
		}
		if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(certPath, t.certPEM, 0o600); err != nil {
			return nil, err
		}
		return t, nil
	}
	if kerr != nil {
		return nil, fmt.Errorf("transport key: %w", kerr)
	}
	if cerr != nil {
		return nil, fmt.Errorf("transport certificate: %w", cerr)
	}
	return LoadTransport(keyPEM, certPEM)
}

// LoadTransport makes a Transport of a PEM private key (PKCS#8 or PKCS#1)
// and its PEM certificate.
func LoadTransport(keyPEM, certPEM []byte) (*Transport, error) {
	key, err := parseRSAKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("transport key %s: %w; delete both transport files to make new ones", TransportKeyFile, err)
	}
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("transport certificate %s: no PEM CERTIFICATE; delete both transport files to make new ones", TransportCertFile)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("transport certificate %s: %w; delete both transport files to make new ones", TransportCertFile, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("transport certificate %s is not the key's; delete both transport files to make new ones", TransportCertFile)
	}
	return &Transport{key: key, cert: cert, certPEM: pem.EncodeToMemory(b)}, nil
}

func newTransport() (*Transport, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("transport key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("transport certificate: %w", err)
	}
	// The subject key identifier is RFC 5280's first method, the SHA-1 of
	// the public key, which is what openssl puts in the certificate
	// WALinuxAgent makes. Go adds one by itself only to CA certificates.
	ski := sha1.Sum(x509.MarshalPKCS1PublicKey(&key.PublicKey))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "LinuxTransport"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(2, 0, 0),
		SubjectKeyId:          ski[:],
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("transport certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("transport certificate: %w", err)
	}
	return &Transport{key: key, cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// CertificatePEM is the transport certificate in PEM.
func (t *Transport) CertificatePEM() []byte { return t.certPEM }

// parseRSAKey reads a PEM RSA private key, PKCS#8 or PKCS#1.
func parseRSAKey(keyPEM []byte) (*rsa.PrivateKey, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an RSA key", k)
	}
	return rk, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path, so a reader never sees half a key.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}
