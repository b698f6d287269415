package certs

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// A small CMS (RFC 5652) EnvelopedData decoder: the wire server's
// Certificates and extensions' protectedSettings are such envelopes, with
// one key-transport recipient named by issuer and serial number or by
// subject key identifier (which common Go PKCS#7 packages reject).

// MaxEnvelopeSize bounds an envelope; the wire server's are a few KiB.
const MaxEnvelopeSize = 4 << 20

// ErrNotForUs: no recipient of the envelope is the given certificate.
var ErrNotForUs = errors.New("CMS envelope has no recipient matching the certificate")

var (
	oidEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSAOAEP       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 7}
	oidSHA1          = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidDESEDE3CBC    = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidAES128CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type envelopedData struct {
	Version              int
	OriginatorInfo       asn1.RawValue   `asn1:"optional,tag:0"`
	RecipientInfos       []asn1.RawValue `asn1:"set"`
	EncryptedContentInfo encryptedContentInfo
	UnprotectedAttrs     asn1.RawValue `asn1:"optional,tag:1"`
}

type encryptedContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Algorithm   pkix.AlgorithmIdentifier
	// EncryptedContent is [0] IMPLICIT OCTET STRING, primitive or (BER)
	// constructed of primitive pieces.
	EncryptedContent asn1.RawValue `asn1:"optional"`
}

type keyTransRecipientInfo struct {
	Version      int
	RID          asn1.RawValue
	Algorithm    pkix.AlgorithmIdentifier
	EncryptedKey []byte
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type oaepParams struct {
	Hash pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:0"`
	MGF  pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:1"`
	// pSourceFunc [2] is accepted only when absent (the empty label).
	PSource asn1.RawValue `asn1:"optional,explicit,tag:2"`
}

// decryptEnvelope returns the content of a DER CMS EnvelopedData
// addressed to cert, decrypting the content key with key.
func decryptEnvelope(der []byte, cert *x509.Certificate, key *rsa.PrivateKey) ([]byte, error) {
	if len(der) > MaxEnvelopeSize {
		return nil, fmt.Errorf("CMS envelope of %d bytes, over %d", len(der), MaxEnvelopeSize)
	}
	var ci contentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil {
		return nil, fmt.Errorf("CMS envelope: %v", err)
	} else if len(rest) > 0 {
		return nil, errors.New("CMS envelope: data after the ContentInfo")
	}
	if !ci.ContentType.Equal(oidEnvelopedData) {
		return nil, fmt.Errorf("CMS envelope: content type %v, want EnvelopedData %v", ci.ContentType, oidEnvelopedData)
	}
	var ed envelopedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
		return nil, fmt.Errorf("CMS EnvelopedData: %v", err)
	}
	var cek []byte
	for _, raw := range ed.RecipientInfos {
		var ri keyTransRecipientInfo
		// Other recipient kinds (key agreement, KEK, password) are
		// tagged and fail to parse as a SEQUENCE: skip them.
		if raw.Tag != asn1.TagSequence || raw.Class != asn1.ClassUniversal {
			continue
		}
		if _, err := asn1.Unmarshal(raw.FullBytes, &ri); err != nil {
			return nil, fmt.Errorf("CMS KeyTransRecipientInfo: %v", err)
		}
		if !namesCert(ri.RID, cert) {
			continue
		}
		var err error
		if cek, err = decryptKey(ri, key); err != nil {
			return nil, err
		}
		break
	}
	if cek == nil {
		return nil, ErrNotForUs
	}
	eci := ed.EncryptedContentInfo
	ct, err := encryptedContent(eci.EncryptedContent)
	if err != nil {
		return nil, err
	}
	return decryptContent(eci.Algorithm, cek, ct)
}

// namesCert reports whether a RecipientIdentifier names cert.
func namesCert(rid asn1.RawValue, cert *x509.Certificate) bool {
	switch {
	case rid.Class == asn1.ClassContextSpecific && rid.Tag == 0 && !rid.IsCompound:
		return len(cert.SubjectKeyId) > 0 && bytes.Equal(rid.Bytes, cert.SubjectKeyId)
	case rid.Class == asn1.ClassUniversal && rid.Tag == asn1.TagSequence:
		var ias issuerAndSerial
		if _, err := asn1.Unmarshal(rid.FullBytes, &ias); err != nil || ias.Serial == nil {
			return false
		}
		return bytes.Equal(ias.Issuer.FullBytes, cert.RawIssuer) && ias.Serial.Cmp(cert.SerialNumber) == 0
	}
	return false
}

func decryptKey(ri keyTransRecipientInfo, key *rsa.PrivateKey) ([]byte, error) {
	alg := ri.Algorithm.Algorithm
	switch {
	case alg.Equal(oidRSAEncryption):
		k, err := rsa.DecryptPKCS1v15(nil, key, ri.EncryptedKey)
		if err != nil {
			return nil, fmt.Errorf("CMS content key (RSA PKCS#1 v1.5): %v", err)
		}
		return k, nil
	case alg.Equal(oidRSAOAEP):
		if err := checkOAEPSHA1(ri.Algorithm.Parameters); err != nil {
			return nil, err
		}
		k, err := rsa.DecryptOAEP(sha1.New(), nil, key, ri.EncryptedKey, nil)
		if err != nil {
			return nil, fmt.Errorf("CMS content key (RSA-OAEP): %v", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("CMS key encryption algorithm %v is not supported (RSA PKCS#1 v1.5 and RSA-OAEP with SHA-1 are)", alg)
}

// checkOAEPSHA1 accepts RSAES-OAEP parameters that are absent or name the
// defaults: SHA-1, MGF1 with SHA-1, an empty label.
func checkOAEPSHA1(params asn1.RawValue) error {
	if len(params.FullBytes) == 0 || params.Tag == asn1.TagNull {
		return nil
	}
	var p oaepParams
	if _, err := asn1.Unmarshal(params.FullBytes, &p); err != nil {
		return fmt.Errorf("CMS RSA-OAEP parameters: %v", err)
	}
	if len(p.Hash.Algorithm) > 0 && !p.Hash.Algorithm.Equal(oidSHA1) {
		return fmt.Errorf("CMS RSA-OAEP hash %v is not supported (SHA-1 is)", p.Hash.Algorithm)
	}
	if len(p.MGF.Algorithm) > 0 {
		var h pkix.AlgorithmIdentifier
		if _, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &h); err != nil || !h.Algorithm.Equal(oidSHA1) {
			return errors.New("CMS RSA-OAEP mask generation is not MGF1 with SHA-1")
		}
	}
	if len(p.PSource.FullBytes) > 0 {
		return errors.New("CMS RSA-OAEP with a label is not supported")
	}
	return nil
}

// encryptedContent returns the [0] IMPLICIT OCTET STRING's bytes, joining
// the pieces of a constructed one.
func encryptedContent(v asn1.RawValue) ([]byte, error) {
	if v.Class != asn1.ClassContextSpecific || v.Tag != 0 {
		return nil, errors.New("CMS envelope has no encrypted content")
	}
	if !v.IsCompound {
		return v.Bytes, nil
	}
	var out []byte
	for rest := v.Bytes; len(rest) > 0; {
		var piece []byte
		var err error
		if rest, err = asn1.Unmarshal(rest, &piece); err != nil {
			return nil, fmt.Errorf("CMS encrypted content: %v", err)
		}
		out = append(out, piece...)
	}
	return out, nil
}

func decryptContent(alg pkix.AlgorithmIdentifier, cek, ct []byte) ([]byte, error) {
	var iv []byte
	if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &iv); err != nil {
		return nil, fmt.Errorf("CMS content encryption IV: %v", err)
	}
	var newCipher func([]byte) (cipher.Block, error)
	var keyLen int
	switch a := alg.Algorithm; {
	case a.Equal(oidDESEDE3CBC):
		newCipher, keyLen = des.NewTripleDESCipher, 24
	case a.Equal(oidAES128CBC):
		newCipher, keyLen = aes.NewCipher, 16
	case a.Equal(oidAES192CBC):
		newCipher, keyLen = aes.NewCipher, 24
	case a.Equal(oidAES256CBC):
		newCipher, keyLen = aes.NewCipher, 32
	default:
		return nil, fmt.Errorf("CMS content encryption %v is not supported (3DES-CBC and AES-CBC are)", a)
	}
	if len(cek) != keyLen {
		return nil, fmt.Errorf("CMS content key of %d bytes, want %d (wrong key?)", len(cek), keyLen)
	}
	block, err := newCipher(cek)
	if err != nil {
		return nil, fmt.Errorf("CMS content key: %v", err)
	}
	bs := block.BlockSize()
	if len(iv) != bs {
		return nil, fmt.Errorf("CMS content encryption IV of %d bytes, want %d", len(iv), bs)
	}
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, fmt.Errorf("CMS encrypted content of %d bytes is not a multiple of the %d-byte block", len(ct), bs)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	// PKCS#7 padding.
	n := int(pt[len(pt)-1])
	if n == 0 || n > bs || !bytes.Equal(pt[len(pt)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return nil, errors.New("CMS content: bad padding (wrong key?)")
	}
	return pt[:len(pt)-n], nil
}
