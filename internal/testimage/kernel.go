package testimage

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// DebianCloudKernel downloads (once, into the tests' cache) the .deb of Debian's
// current cloud kernel, the one linux-image-cloud-amd64 depends on, and
// unpacks it into a fresh directory. It skips when apt cannot find or
// download the package: that needs apt sources and the network, which CI
// may not have, so not even VHDPREP_REQUIRE_TOOLS makes it fail.
func DebianCloudKernel(t testing.TB) (tree, version string) {
	t.Helper()
	RequireTools(t, "apt-cache", "apt-get", "dpkg-deb", "cpio", "zstd")
	out, err := exec.Command("apt-cache", "depends", "linux-image-cloud-amd64").CombinedOutput()
	m := regexp.MustCompile(`Depends: (linux-image-([0-9][^ \n]*-cloud-amd64))\n`).FindStringSubmatch(string(out))
	if err != nil || m == nil {
		t.Skipf("apt-cache knows no linux-image-cloud-amd64 (needs Debian's apt sources and apt-get update): %v %s", err, out)
	}
	pkg, version := m[1], m[2]
	cache := CacheDir(t, "debs")
	debs, _ := filepath.Glob(filepath.Join(cache, pkg+"_*_amd64.deb"))
	if len(debs) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
		cmd.Dir = cache
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("apt-get download %s failed (no network or no apt sources?): %v\n%s", pkg, err, out)
		}
		debs, _ = filepath.Glob(filepath.Join(cache, pkg+"_*_amd64.deb"))
		if len(debs) == 0 {
			t.Fatalf("apt-get download %s left no .deb in %s", pkg, cache)
		}
	}
	tree = t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", debs[len(debs)-1], tree).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", debs[len(debs)-1], err, out)
	}
	return tree, version
}

// ShowDepends is what the host's modprobe would load for name (a module,
// an alias, symbol:NAME) from the module tree under root for kernel
// version, as `modprobe --show-depends` prints it, in its order, with root
// cut to ROOT so that two trees compare.
func ShowDepends(t testing.TB, root, version, name string) string {
	t.Helper()
	RequireTools(t, "modprobe")
	out, err := exec.Command("modprobe", "-d", root, "-S", version, "--show-depends", name).CombinedOutput()
	if err != nil {
		t.Fatalf("modprobe --show-depends %s under %s: %v\n%s", name, root, err, out)
	}
	return strings.ReplaceAll(string(out), root, "ROOT")
}
