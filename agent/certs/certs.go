package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/pkcs12"
)

// DefaultDir is where WALinuxAgent keeps the transport key and writes the
// tenant certificates; extensions read <THUMBPRINT>.crt/.prv there.
const DefaultDir = "/var/lib/waagent"

// FormatPFX is the only Certificates format the wire server sends to Linux.
const FormatPFX = "Pkcs7BlobWithPfxContents"

// ErrNotPFX: the Certificates document holds another format. WALinuxAgent
// warns and goes on without certificates.
var ErrNotPFX = errors.New("Certificates document is not " + FormatPFX)

// Pair is one tenant certificate and, when the PFX held it, its key.
type Pair struct {
	Thumbprint string // uppercase hex SHA-1 of the DER certificate
	CertPEM    []byte
	KeyPEM     []byte // PKCS#8 "PRIVATE KEY"; nil when the PFX had no key for it. Secret.
}

type certificateFile struct {
	XMLName xml.Name `xml:"CertificateFile"`
	Format  string   `xml:"Format"`
	Data    string   `xml:"Data"`
}

// Decrypt reads a Certificates document: its Data is a CMS envelope to the
// transport certificate holding a PFX with an empty password. It returns
// every certificate in the PFX, each with its key when the PFX holds one
// (matched by public key, not by order), in the PFX's order.
func (t *Transport) Decrypt(certificatesXML []byte) ([]Pair, error) {
	if len(certificatesXML) > 2*MaxEnvelopeSize {
		return nil, fmt.Errorf("Certificates document of %d bytes, over %d", len(certificatesXML), 2*MaxEnvelopeSize)
	}
	var f certificateFile
	if err := xml.Unmarshal(certificatesXML, &f); err != nil {
		return nil, fmt.Errorf("Certificates document: %v", err)
	}
	// WALinuxAgent takes a missing Format for the PFX one.
	if format := strings.TrimSpace(f.Format); format != "" && format != FormatPFX {
		return nil, fmt.Errorf("%w (it is %q)", ErrNotPFX, format)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(f.Data), ""))
	if err != nil {
		return nil, fmt.Errorf("Certificates document: Data is not base64: %v", err)
	}
	pfx, err := decryptEnvelope(der, t.cert, t.key)
	if err != nil {
		return nil, fmt.Errorf("Certificates document: %w", err)
	}
	return splitPFX(pfx)
}

// splitPFX reads every certificate and key of a PFX with an empty password
// and pairs them by public key.
func splitPFX(pfx []byte) ([]Pair, error) {
	blocks, err := pkcs12.ToPEM(pfx, "")
	if err != nil {
		return nil, fmt.Errorf("Certificates PFX: %v", err)
	}
	var certs []*x509.Certificate
	var keys []crypto.Signer
	for _, b := range blocks {
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("Certificates PFX: certificate: %v", err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY":
			// pkcs12.ToPEM labels RSA keys PKCS#1 and EC keys SEC 1.
			k, err := parsePFXKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("Certificates PFX: private key: %v", err)
			}
			keys = append(keys, k)
		}
	}
	var pairs []Pair
	for _, c := range certs {
		p := Pair{Thumbprint: Thumbprint(c.Raw), CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})}
		for _, k := range keys {
			if pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(c.PublicKey) {
				der, err := x509.MarshalPKCS8PrivateKey(k)
				if err != nil {
					return nil, fmt.Errorf("Certificates PFX: key of %s: %v", p.Thumbprint, err)
				}
				p.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
				break
			}
		}
		pairs = append(pairs, p)
	}
	return pairs, nil
}

func parsePFXKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("neither an RSA nor an EC key")
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", k)
}

// Thumbprint is the uppercase hex SHA-1 of a DER certificate, as the
// goal state names certificates.
func Thumbprint(der []byte) string {
	s := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// WriteAll writes <THUMBPRINT>.crt (0644) and, where a key is known,
// <THUMBPRINT>.prv (0600) in dir, each atomically.
func WriteAll(dir string, pairs []Pair) error {
	for _, p := range pairs {
		if !validThumbprint(p.Thumbprint) {
			return fmt.Errorf("write certificates: thumbprint %q is not 40 uppercase hex digits", p.Thumbprint)
		}
		if err := writeFileAtomic(filepath.Join(dir, p.Thumbprint+".crt"), p.CertPEM, 0o644); err != nil {
			return fmt.Errorf("write certificate %s: %w", p.Thumbprint, err)
		}
		if p.KeyPEM != nil {
			if err := writeFileAtomic(filepath.Join(dir, p.Thumbprint+".prv"), p.KeyPEM, 0o600); err != nil {
				return fmt.Errorf("write key of certificate %s: %w", p.Thumbprint, err)
			}
		}
	}
	return nil
}

func validThumbprint(s string) bool {
	if len(s) != 2*sha1.Size {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}
