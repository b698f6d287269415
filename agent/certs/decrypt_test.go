package certs

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// What an extension does with the certificates: the tests decrypt with it
// what the simulator encrypted to them.

// DecryptSettings decrypts an extension's protectedSettings (a base64 CMS
// envelope) with the certificate and key WriteAll wrote, as an extension
// does with `openssl smime -decrypt`. The result is secret.
func DecryptSettings(protected string, crtPEM, keyPEM []byte) ([]byte, error) {
	b, _ := pem.Decode(crtPEM)
	if b == nil {
		return nil, errors.New("protected settings: the certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("protected settings: certificate: %v", err)
	}
	key, err := parseRSAKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("protected settings: key: %v", err)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(protected), ""))
	if err != nil {
		return nil, errors.New("protected settings are not base64")
	}
	pt, err := decryptEnvelope(der, cert, key)
	if err != nil {
		return nil, fmt.Errorf("protected settings: %w", err)
	}
	return pt, nil
}
