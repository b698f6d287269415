package certs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vhdprep/vhdprep/agent/internal/fixtures"
)

func TestConformanceWireCerts(t *testing.T) {
	dir := fixtures.Require(t)
	tr, err := LoadTransport(fixtures.Read(t, dir, "wire/trans_prv"), fixtures.Read(t, dir, "wire/trans_cert"))
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := tr.Decrypt(fixtures.Read(t, dir, "wire/certs.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// ext_conf.xml's protectedSettingsCertThumbprint.
	const want = "F6ABAA61098A301EBB8A571C3C7CF77F355F7FA9"
	var found bool
	for _, p := range pairs {
		if p.Thumbprint == want {
			found = true
			if p.KeyPEM == nil {
				t.Errorf("%s has no key", want)
			}
		}
	}
	if !found {
		t.Errorf("thumbprints %v, want %s among them", thumbprints(pairs), want)
	}
	out := t.TempDir()
	if err := WriteAll(out, pairs); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(out, want+".prv"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s.prv mode %v, want 0600", want, st.Mode().Perm())
	}
}

func TestConformanceHibernateCerts(t *testing.T) {
	dir := fixtures.Require(t)
	key := fixtures.Read(t, dir, "hibernate/TransportPrivate.pem")
	cert := fixtures.Read(t, dir, "hibernate/TransportCert.pem")
	tr, err := LoadTransport(key, cert)
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := tr.Decrypt(fixtures.Read(t, dir, "hibernate/goal_state_1/Certificates.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []struct {
		Thumbprint    string `json:"thumbprint"`
		HasPrivateKey bool   `json:"hasPrivateKey"`
	}
	if err := json.Unmarshal(fixtures.Read(t, dir, "hibernate/goal_state_1/Certificates.json"), &want); err != nil {
		t.Fatal(err)
	}
	if len(pairs) != len(want) {
		t.Fatalf("thumbprints %v, want %v", thumbprints(pairs), want)
	}
	for _, w := range want {
		i := slices.IndexFunc(pairs, func(p Pair) bool { return p.Thumbprint == w.Thumbprint })
		if i < 0 {
			t.Errorf("no certificate %s in %v", w.Thumbprint, thumbprints(pairs))
			continue
		}
		if got := pairs[i].KeyPEM != nil; got != w.HasPrivateKey {
			t.Errorf("%s: has key %v, want %v", w.Thumbprint, got, w.HasPrivateKey)
		}
	}
}

func thumbprints(pairs []Pair) []string {
	var s []string
	for _, p := range pairs {
		s = append(s, p.Thumbprint)
	}
	return s
}
