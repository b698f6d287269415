package imds

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/internal/fixtures"
)

func TestFixtures(t *testing.T) {
	dir := fixtures.Require(t)
	for name, want := range map[string]Compute{
		"imds/valid.json": {Name: "health", VMID: "e7fdbfc4-2deb-4a4e-8615-ea6aaf50162e", Location: "westus", VMSize: "Standard_D2_V2", OSType: "Linux",
			ResourceGroupName: "tests", SubscriptionID: "21b2dc34-bce6-4e63-9449-d2a8d1c2339e"},
		"imds/unicode.json": {Name: "héalth", VMID: "é7fdbfc4-2déb-4a4é-8615-éa6aaf50162é", Location: "wéstus", VMSize: "Standard_D2_V2", OSType: "Linux",
			ResourceGroupName: "tésts", SubscriptionID: "21b2dc34-bcé6-4é63-9449-d2a8d1c2339é"},
	} {
		i, err := Parse(fixtures.Read(t, dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c := i.Compute
		if c.Name != want.Name || c.VMID != want.VMID || c.Location != want.Location || c.VMSize != want.VMSize || c.OSType != want.OSType ||
			c.ResourceGroupName != want.ResourceGroupName || c.SubscriptionID != want.SubscriptionID || len(c.PublicKeys) != 0 || c.OSProfile != (OSProfile{}) {
			t.Errorf("%s: %+v", name, c)
		}
		if c.HostName() != want.Name || !c.PasswordAuthenticationDisabled() {
			t.Errorf("%s: host name %q, password auth disabled %v", name, c.HostName(), c.PasswordAuthenticationDisabled())
		}
	}
}

const withProfile = `{"compute":{"name":"vm-name","vmId":"d0df4c54-4ecb-4a4b-9954-5bdf3ed5c3b8",
 "osProfile":{"adminUsername":"azureuser","computerName":"myhost","disablePasswordAuthentication":"false"},
 "publicKeys":[{"keyData":"ssh-ed25519 AAAAC3Nza test@example","path":"/home/azureuser/.ssh/authorized_keys"}]},"network":{}}`

func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata") != "true" || r.URL.Path != "/metadata/instance" || r.URL.Query().Get("api-version") != APIVersion {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Write([]byte(withProfile))
	}))
	defer srv.Close()
	c := &Client{Endpoint: strings.TrimPrefix(srv.URL, "http://")}
	i, err := c.Instance(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cp := i.Compute
	if cp.HostName() != "myhost" || cp.OSProfile.AdminUsername != "azureuser" || cp.PasswordAuthenticationDisabled() ||
		len(cp.PublicKeys) != 1 || cp.PublicKeys[0].KeyData != "ssh-ed25519 AAAAC3Nza test@example" {
		t.Errorf("compute %+v", cp)
	}
}

func TestParseInvalid(t *testing.T) {
	for _, doc := range []string{"", "[]", `{"network":{}}`, `{"compute":[]}`, "{"} {
		if _, err := Parse([]byte(doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q): err = %v, want ErrInvalid", doc, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(withProfile))
	for _, b := range fixtures.Seeds("imds/valid.json", "imds/unicode.json") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if i, err := Parse(doc); err == nil {
			_ = i.Compute.HostName()
		}
	})
}
