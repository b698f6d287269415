package wiresim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
)

// SetCertificatesPFX makes the goal state link a Certificates document
// that holds pfx (a PKCS#12 file with an empty password), encrypted as the
// wire server does to the transport certificate each request carries in
// x-ms-guest-agent-public-x509-cert: recipient named by its
// SubjectKeyIdentifier (a certificate without one is refused), RSA-OAEP
// and AES-128-CBC for x-ms-cipher-name AES128_CBC, RSA PKCS#1 v1.5 and
// 3DES-CBC for DES_EDE3_CBC.
func (s *Server) SetCertificatesPFX(pfx []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pfx = append([]byte(nil), pfx...)
	s.docs["certificates"] = "" // linked from the goal state; made per request
}

// certificatesLocked answers a Certificates request for the PFX.
func (s *Server) certificatesLocked(certHeader, cipherName string) (int, string) {
	der, err := base64.StdEncoding.DecodeString(certHeader)
	if err != nil {
		return 400, "x-ms-guest-agent-public-x509-cert is not base64 DER"
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return 400, "x-ms-guest-agent-public-x509-cert: " + err.Error()
	}
	env, err := EncryptEnvelope(cert, s.pfx, cipherName == "DES_EDE3_CBC")
	if err != nil {
		return 400, err.Error()
	}
	return 200, `<?xml version="1.0" encoding="utf-8"?>
<CertificateFile xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="certificates10.xsd">
  <Version>2012-11-30</Version>
  <Incarnation>` + fmt.Sprint(s.incarnation) + `</Incarnation>
  <Format>Pkcs7BlobWithPfxContents</Format>
  <Data>` + base64.StdEncoding.EncodeToString(env) + `</Data>
</CertificateFile>
`
}

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSAOAEP       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 7}
	oidDESEDE3CBC    = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidAES128CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
)

type keyTransRecipient struct {
	Version      int
	SKI          []byte `asn1:"tag:0"`
	Algorithm    pkix.AlgorithmIdentifier
	EncryptedKey []byte
}

type encryptedContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Algorithm   pkix.AlgorithmIdentifier
	Content     []byte `asn1:"tag:0"`
}

type envelopedData struct {
	Version    int
	Recipients []keyTransRecipient `asn1:"set"`
	Content    encryptedContentInfo
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     envelopedData `asn1:"explicit,tag:0"`
}

// EncryptEnvelope makes a DER CMS EnvelopedData of plaintext to cert's
// RSA key, recipient named by SubjectKeyIdentifier, as the wire server's:
// RSA-OAEP (SHA-1) with AES-128-CBC, or with legacy, RSA PKCS#1 v1.5 with
// 3DES-CBC.
func EncryptEnvelope(cert *x509.Certificate, plaintext []byte, legacy bool) ([]byte, error) {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("transport certificate has no RSA key")
	}
	if len(cert.SubjectKeyId) == 0 {
		return nil, errors.New("transport certificate has no SubjectKeyIdentifier")
	}
	keyLen, newCipher, contentAlg := 16, aes.NewCipher, oidAES128CBC
	if legacy {
		keyLen, newCipher, contentAlg = 24, des.NewTripleDESCipher, oidDESEDE3CBC
	}
	cek := make([]byte, keyLen)
	rand.Read(cek)
	block, err := newCipher(cek)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, block.BlockSize())
	rand.Read(iv)
	pad := block.BlockSize() - len(plaintext)%block.BlockSize()
	ct := append(append([]byte(nil), plaintext...), make([]byte, pad)...)
	for i := len(plaintext); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)

	var ek []byte
	keyAlg := pkix.AlgorithmIdentifier{Algorithm: oidRSAOAEP, Parameters: asn1.RawValue{FullBytes: []byte{0x30, 0}}}
	if legacy {
		keyAlg = pkix.AlgorithmIdentifier{Algorithm: oidRSAEncryption, Parameters: asn1.NullRawValue}
		ek, err = rsa.EncryptPKCS1v15(rand.Reader, pub, cek)
	} else {
		ek, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, cek, nil)
	}
	if err != nil {
		return nil, err
	}
	ivDER, _ := asn1.Marshal(iv)
	return asn1.Marshal(contentInfo{
		ContentType: oidEnvelopedData,
		Content: envelopedData{
			Version:    2,
			Recipients: []keyTransRecipient{{Version: 2, SKI: cert.SubjectKeyId, Algorithm: keyAlg, EncryptedKey: ek}},
			Content: encryptedContentInfo{
				ContentType: oidData,
				Algorithm:   pkix.AlgorithmIdentifier{Algorithm: contentAlg, Parameters: asn1.RawValue{FullBytes: ivDER}},
				Content:     ct,
			},
		},
	})
}
