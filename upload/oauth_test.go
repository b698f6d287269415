package upload

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vhdprep/vhdprep/internal/azurite"
)

// identityEndpoint is a managed identity endpoint as App Service runs one
// (IDENTITY_ENDPOINT, IDENTITY_HEADER), handing out a token for audience
// aud to the user-assigned identity clientID (AZURE_CLIENT_ID; MSAL caches
// tokens for the process, by identity). It counts the tokens it gave.
func identityEndpoint(t *testing.T, clientID, aud string) *atomic.Int32 {
	const secret = "identity-header-secret"
	var issued atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Header.Get("X-IDENTITY-HEADER") != secret || q.Get("resource") != "https://storage.azure.com" || q.Get("client_id") != clientID {
			http.Error(w, "wrong header, resource or identity", http.StatusBadRequest)
			return
		}
		issued.Add(1)
		exp := time.Now().Add(time.Hour).Unix()
		json.NewEncoder(w).Encode(map[string]string{
			"access_token": testJWT(aud, exp),
			"expires_on":   fmt.Sprint(exp),
			"resource":     "https://storage.azure.com",
			"token_type":   "Bearer",
		})
	}))
	t.Cleanup(srv.Close)
	for _, v := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
		"AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TOKEN_CREDENTIALS", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	t.Setenv("AZURE_CLIENT_ID", clientID)
	t.Setenv("IDENTITY_ENDPOINT", srv.URL)
	t.Setenv("IDENTITY_HEADER", secret)
	return &issued
}

// testJWT is an access token as Azure AD issues them, unsigned: Azurite
// checks the claims, not the signature.
func testJWT(aud string, exp int64) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now().Add(-time.Minute).Unix()
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." +
		enc(map[string]any{"aud": aud, "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000001/", "iat": now, "nbf": now, "exp": exp}) +
		".c2lnbmF0dXJl"
}

// TestUploadDefaultAzureCredential uploads to a plain blob URL of Azurite
// in OAuth mode: DefaultAzureCredential gets a token from the managed
// identity endpoint and the storage accepts it; a token for another
// audience is refused.
func TestUploadDefaultAzureCredential(t *testing.T) {
	srv := azurite.StartOAuth(t)
	srv.CreateContainer(t, "vhds")
	file := makeVHD(t, testSize, sampleWrites(testSize))

	upload := func(clientID, aud, name string) (*Summary, int32, error) {
		issued := identityEndpoint(t, clientID, aud)
		b, err := NewAzureBlob(Target{BlobURL: srv.Endpoint + "/vhds/" + name, HTTPClient: srv.Client})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := Upload(context.Background(), fastRetries(Options{File: file, Blob: b, Verify: true}), nil)
		return sum, issued.Load(), err
	}
	// First, that Azurite checks tokens at all: else this test proves nothing.
	if _, issued, err := upload("other-audience", "https://vault.azure.net", "other.vhd"); err == nil || issued == 0 {
		t.Fatalf("a token for another audience: %d issued, upload error %v; want one issued and refused", issued, err)
	}
	sum, issued, err := upload("storage-audience", "https://storage.azure.com", "disk.vhd")
	if err != nil {
		t.Fatal(err)
	}
	if issued == 0 || !sum.Verified {
		t.Errorf("%d tokens issued, verified %v", issued, sum.Verified)
	}
	roundTrip(t, srv, file, "vhds", "disk.vhd")
}
