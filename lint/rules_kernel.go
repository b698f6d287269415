package lint

import (
	"fmt"
	"strings"

	"github.com/vhdprep/vhdprep/kernel"
)

// cmdlines returns every kernel command line, or a skip when there is none.
func (t *Target) cmdlineLocations() ([]kernel.Location, error) {
	if _, err := t.root(); err != nil {
		return nil, err
	}
	t.learn()
	if len(t.cmdlines) == 0 {
		return nil, Skip("no kernel command line found (no /etc/default/grub, grub.cfg, BLS entry, grubenv, extlinux.conf or /etc/kernel/cmdline)")
	}
	return t.cmdlines, nil
}

// perCmdline reports, for each command line, the problem bad finds there.
func perCmdline(t *Target, bad func(kernel.Cmdline) string) ([]Finding, error) {
	locs, err := t.cmdlineLocations()
	if err != nil {
		return nil, err
	}
	var fs []Finding
	for _, l := range locs {
		if msg := bad(l.Cmdline); msg != "" {
			fs = append(fs, Finding{Message: fmt.Sprintf("%s (%s)", msg, describeEntry(l)), Location: Location{File: l.Path, Line: l.Line}})
		}
	}
	return fs, nil
}

// describeEntry names a command line's place for a message: its kind, and
// the boot entry it belongs to.
func describeEntry(l kernel.Location) string {
	if l.Entry == "" {
		return l.Kind
	}
	return fmt.Sprintf("%s entry %q", l.Kind, l.Entry)
}

// serialDevice is the console KRN001 requires: ttyS0, ttyAMA0 on arm64,
// or what the configuration says.
func serialDevice(t *Target) string {
	t.learn()
	want := "ttyS0"
	if t.arch == "aarch64" {
		want = "ttyAMA0"
	}
	return t.option("KRN001", "console", want)
}

func checkSerialConsole(t *Target) ([]Finding, error) {
	want := serialDevice(t)
	return perCmdline(t, func(c kernel.Cmdline) string {
		if !c.HasValuePrefix("console", want) {
			return "no console=" + want
		}
		return ""
	})
}

func checkEarlyPrintk(t *Target) ([]Finding, error) {
	return perCmdline(t, func(c kernel.Cmdline) string {
		if !c.HasValuePrefix("earlyprintk", "ttyS0") {
			return "no earlyprintk=ttyS0"
		}
		return ""
	})
}

// rootDelaySleeps explains why rootdelay=300 is left out where the boot
// path sleeps for it instead of waiting up to it: initramfs-tools' /init
// runs `sleep $ROOTDELAY` before looking for the root device, so the
// parameter would add five minutes to every boot.
const rootDelaySleeps = "leave it out: this image's initramfs-tools sleeps rootdelay seconds on every boot, so rootdelay=300 would add five minutes to each (Azure's Marketplace test reports its absence only as a warning)"

func checkRootDelay(t *Target) ([]Finding, error) {
	fs, err := perCmdline(t, func(c kernel.Cmdline) string {
		for _, v := range c.Values("rootdelay") {
			if v == "300" {
				return ""
			}
		}
		return "no rootdelay=300"
	})
	if root, rerr := t.root(); rerr == nil && initramfsToolOf(root).name == "initramfs-tools" {
		for i := range fs {
			fs[i].Severity, fs[i].Fix, fs[i].Fixable = Info, rootDelaySleeps, false
		}
	}
	return fs, err
}

func checkQuiet(t *Target) ([]Finding, error) {
	return perCmdline(t, func(c kernel.Cmdline) string {
		var found []string
		for _, k := range []string{"rhgb", "quiet", "splash"} {
			if c.Has(k) {
				found = append(found, k)
			}
		}
		switch len(found) {
		case 0:
			return ""
		case 1:
			return found[0] + " is set; it hides boot messages from the serial console"
		}
		return strings.Join(found, ", ") + " are set; they hide boot messages from the serial console"
	})
}

func checkCrashKernel(t *Target) ([]Finding, error) {
	return perCmdline(t, func(c kernel.Cmdline) string {
		for _, v := range c.Values("crashkernel") {
			if v == "auto" {
				return "crashkernel=auto reserves at least 128 MB"
			}
		}
		return ""
	})
}

func checkATAPI(t *Target) ([]Finding, error) {
	return perCmdline(t, func(c kernel.Cmdline) string {
		for _, v := range c.Values("libata.atapi_enabled") {
			if v == "0" {
				return "libata.atapi_enabled=0 hides the provisioning CD-ROM"
			}
		}
		for _, v := range c.Values("reserve") {
			if v == "0x1f0,0x8" {
				return "reserve=0x1f0,0x8 hides the provisioning CD-ROM"
			}
		}
		return ""
	})
}

// deviceNames are kernel device names that change between hypervisors.
var deviceNames = []string{"/dev/sd", "/dev/vd", "/dev/hd", "/dev/xvd", "/dev/nvme"}

func isDeviceName(spec string) bool {
	for _, p := range deviceNames {
		if strings.HasPrefix(spec, p) {
			return true
		}
	}
	return false
}

func checkRootByID(t *Target) ([]Finding, error) {
	return perCmdline(t, func(c kernel.Cmdline) string {
		for _, v := range c.Values("root") {
			if isDeviceName(v) {
				return "root=" + v + " names a device, which differs on Hyper-V; use root=UUID=..."
			}
		}
		return ""
	})
}
