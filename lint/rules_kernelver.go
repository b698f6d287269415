package lint

import (
	"bytes"
	"fmt"

	"github.com/vhdprep/vhdprep/kernel"
)

// rhelBuild is a RHEL kernel's build number: 504 in 2.6.32-504.el6.
func rhelBuild(r kernel.Release) int {
	if len(r.Build) == 0 {
		return 0
	}
	return r.Build[0]
}

// before tells whether r is older than the upstream version major.minor.patch.
func before(r kernel.Release, major, minor, patch int) bool {
	return r.Less(kernel.Release{Major: major, Minor: minor, Patch: patch})
}

func is2632(r kernel.Release) bool { return r.Major == 2 && r.Minor == 6 && r.Patch == 32 }

// kernelsOf lists the installed kernels, or a skip when there are none.
func kernelsOf(t *Target) ([]kernel.Kernel, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	ks, err := kernel.InstalledKernels(root)
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, Skip("no installed kernel found")
	}
	return ks, nil
}

// needsNUMAOff: kernels before 2.6.37, and RHEL kernels before 2.6.32-504.
func needsNUMAOff(r kernel.Release) bool {
	if r.RHEL && is2632(r) {
		return rhelBuild(r) < 504
	}
	return before(r, 2, 6, 37)
}

func checkNUMAOff(t *Target) ([]Finding, error) {
	ks, err := kernelsOf(t)
	if err != nil {
		return nil, err
	}
	var old []string
	for _, k := range ks {
		if r, err := kernel.ParseRelease(k.Version); err == nil && needsNUMAOff(r) {
			old = append(old, k.Version)
		}
	}
	if len(old) == 0 {
		return nil, nil
	}
	return perCmdline(t, func(c kernel.Cmdline) string {
		if c.Values("numa") == nil || c.Values("numa")[0] != "off" {
			return fmt.Sprintf("kernel %v needs numa=off", old)
		}
		return ""
	})
}

func checkHyperVKernel(t *Target) ([]Finding, error) {
	ks, err := kernelsOf(t)
	if err != nil {
		return nil, err
	}
	var fs []Finding
	for _, k := range ks {
		r, err := kernel.ParseRelease(k.Version)
		switch {
		case err != nil:
			continue
		case r.RHEL && is2632(r) && rhelBuild(r) < 358:
			fs = append(fs, Finding{Severity: Error, Message: fmt.Sprintf("kernel %s is a RHEL 6.0-6.3 kernel, which needs the Linux Integration Services (LIS) for Hyper-V", k.Version), Location: Location{Kernel: k.Version},
				Fix: "install LIS, or move to RHEL 6.4 or later"})
		case !r.RHEL && before(r, 3, 8, 0):
			fs = append(fs, Finding{Severity: Warning, Message: fmt.Sprintf("kernel %s is older than 3.8, before Hyper-V's drivers were complete upstream", k.Version), Location: Location{Kernel: k.Version}})
		}
	}
	return fs, nil
}

func checkEssentialConfig(t *Target) ([]Finding, error) {
	ks, err := kernelsOf(t)
	if err != nil {
		return nil, err
	}
	root, _ := t.root()
	var fs []Finding
	checked := 0
	for _, k := range ks {
		if k.Config == "" {
			continue
		}
		b, err := readFile(root, k.Config)
		if err != nil {
			return nil, err
		}
		checked++
		for _, sym := range []string{"WATCHDOG", "CIFS"} {
			if !configEnabled(b, sym) {
				fs = append(fs, Finding{Message: fmt.Sprintf("kernel %s lacks CONFIG_%s", k.Version, sym), Location: Location{File: "/" + k.Config, Kernel: k.Version}})
			}
		}
	}
	if checked == 0 {
		return nil, Skip("no kernel config file (boot/config-V) found")
	}
	return fs, nil
}

// configEnabled tells whether a kernel config sets CONFIG_<sym> to y or m.
func configEnabled(config []byte, sym string) bool {
	for _, v := range []string{"=y", "=m"} {
		key := []byte("CONFIG_" + sym + v)
		if bytes.HasPrefix(config, key) || bytes.Contains(config, append([]byte("\n"), key...)) {
			return true
		}
	}
	return false
}

func repairNUMAOff(t *Target, o *Overlay) error {
	return repairCmdlines(t, o, []string{"numa=off"}, nil)
}
