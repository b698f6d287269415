// Package azurite runs Azure Storage's emulator for tests: azurite-blob on a
// free loopback port, in memory, stopped when the test ends; and a strict,
// fault-injecting proxy to put between a client and it.
//
// Azurite is installed by scripts/test-deps.sh into the tests' cache
// (testimage.CacheDir "azurite"), outside the checkout. Tests
// skip without it, and fail under VHDPREP_REQUIRE_TOOLS=1.
package azurite

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/vhdprep/vhdprep/internal/testimage"
)

// Azurite's well-known development account.
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// startTimeout bounds how long Azurite may take to listen.
const startTimeout = 60 * time.Second

// Server is a running azurite-blob.
type Server struct {
	// Endpoint is the account's blob endpoint, http://127.0.0.1:PORT/devstoreaccount1
	// (https with StartOAuth).
	Endpoint string
	Addr     string // host:port
	// Client trusts the server's test certificate (StartOAuth); nil over HTTP.
	Client *http.Client
}

// ErrNotInstalled means scripts/test-deps.sh has not installed Azurite.
var ErrNotInstalled = errors.New("azurite is not installed in the tests' cache, ${XDG_CACHE_HOME:-$HOME/.cache}/vhdprep/azurite (make deps installs it)")

// Start runs azurite-blob for the test and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, stop, err := Launch(testimage.CacheDir(t, "azurite"))
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(stop)
	return s
}

// StartOAuth runs azurite-blob for the test over HTTPS, with a certificate
// made for it, accepting Azure AD bearer tokens as well as shared keys.
// Azurite's --oauth basic checks a token's issuer, audience and lifetime,
// not its signature.
func StartOAuth(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool, err := writeTestCert(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	s, stop, err := launch(testimage.CacheDir(t, "azurite"), "--oauth", "basic", "--cert", cert, "--key", key)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(stop)
	s.Endpoint = strings.Replace(s.Endpoint, "http:", "https:", 1)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	s.Client = &http.Client{Transport: tr}
	return s
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// as PEM files, and returns a pool that trusts it.
func writeTestCert(certFile, keyFile string) (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "azurite test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(cryptorand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool, nil
}

// Shared is one server for all the tests of a package, started by the
// first that asks: Azurite takes seconds to start on a busy machine. The
// package's TestMain calls Stop after m.Run.
type Shared struct {
	once sync.Once
	srv  *Server
	stop func()
	err  error
}

// Get returns the shared server, starting it if needed.
func (s *Shared) Get(t testing.TB) *Server {
	t.Helper()
	s.once.Do(func() { s.srv, s.stop, s.err = Launch(testimage.CacheDir(t, "azurite")) })
	if s.err != nil {
		skipOrFail(t, s.err)
	}
	return s.srv
}

// Stop ends the shared server, if one was started.
func (s *Shared) Stop() {
	if s.stop != nil {
		s.stop()
	}
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNotInstalled) && os.Getenv("VHDPREP_REQUIRE_TOOLS") != "1" {
		t.Skip(err)
	}
	t.Fatal(err)
}

// Launch runs azurite-blob installed in dir, with what Azure
// would refuse left refused: no --loose, so headers Azurite does not
// support are errors, not ignored. --skipApiVersionCheck lets the SDK use
// an API version newer than Azurite's.
func Launch(dir string) (*Server, func(), error) { return launch(dir) }

func launch(dir string, args ...string) (*Server, func(), error) {
	bin := filepath.Join(dir, "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(bin); err != nil {
		return nil, nil, ErrNotInstalled
	}
	if _, err := exec.LookPath("node"); err != nil {
		return nil, nil, fmt.Errorf("%w: no node", ErrNotInstalled)
	}
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	work, err := os.MkdirTemp("", "azurite-") // where it would put debug logs
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, append([]string{"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent"}, args...)...)
	cmd.Dir = work
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		os.RemoveAll(work)
		return nil, nil, fmt.Errorf("azurite: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
		os.RemoveAll(work)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(startTimeout); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			stop()
			return nil, nil, fmt.Errorf("azurite exited: %s", log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("azurite did not listen on %s in %v: %v\n%s", addr, startTimeout, err, log.String())
		}
	}
	return &Server{Endpoint: "http://" + addr + "/" + Account, Addr: addr}, stop, nil
}

// syncBuffer collects a process's output while the test may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ConnectionString is the account's, for endpoint (the server's, or a
// proxy's in front of it).
func ConnectionString(endpoint string) string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", Account, Key, endpoint)
}

func (s *Server) clientOptions() azcore.ClientOptions {
	o := azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: 2}}
	if s.Client != nil {
		o.Transport = s.Client
	}
	return o
}

// CreateContainer makes a container.
func (s *Server) CreateContainer(t testing.TB, name string) {
	t.Helper()
	c, err := container.NewClientFromConnectionString(ConnectionString(s.Endpoint), name, &container.ClientOptions{ClientOptions: s.clientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), nil); err != nil {
		t.Fatalf("creating container %s: %v", name, err)
	}
}

// NewContainer makes a container named after the test, so tests sharing a
// server do not meet.
func (s *Server) NewContainer(t testing.TB) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	name = fmt.Sprintf("%.40s-%x", strings.Trim(name, "-"), rand.Uint32())
	name = strings.ReplaceAll(name, "--", "-")
	s.CreateContainer(t, name)
	return name
}

// PageBlob is a client for a blob with the account key, for tests to set up
// and read back what the code under test did.
func (s *Server) PageBlob(t testing.TB, containerName, blobName string) *pageblob.Client {
	t.Helper()
	c, err := pageblob.NewClientFromConnectionString(ConnectionString(s.Endpoint), containerName, blobName, &pageblob.ClientOptions{ClientOptions: s.clientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SASURL is a blob URL at endpoint with a SAS that allows what an upload
// does (read, create, write) for an hour.
func (s *Server) SASURL(t testing.TB, endpoint, containerName, blobName string) string {
	t.Helper()
	cred, err := blob.NewSharedKeyCredential(Account, Key)
	if err != nil {
		t.Fatal(err)
	}
	q, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     time.Now().Add(-time.Minute).UTC(),
		ExpiryTime:    time.Now().Add(time.Hour).UTC(),
		Permissions:   (&sas.BlobPermissions{Read: true, Create: true, Write: true}).String(),
		ContainerName: containerName,
		BlobName:      blobName,
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s/%s/%s?%s", endpoint, containerName, blobName, q.Encode())
}

// Download writes the blob to a new file in the test's temporary directory
// and returns its path.
func (s *Server) Download(t testing.TB, containerName, blobName string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), blobName)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.PageBlob(t, containerName, blobName).DownloadFile(context.Background(), f, nil); err != nil {
		t.Fatalf("downloading %s/%s: %v", containerName, blobName, err)
	}
	return path
}

// SameFiles fails the test unless files a and b hold the same bytes.
func SameFiles(t testing.TB, a, b string) {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(ba)) {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			i := 0
			for i < min(na, nb) && ba[i] == bb[i] {
				i++
			}
			t.Fatalf("%s and %s differ at byte %d", a, b, off+int64(i))
		}
		if ea != nil || eb != nil {
			if (ea == nil) != (eb == nil) {
				t.Fatalf("%s and %s differ in length", a, b)
			}
			return
		}
	}
}
