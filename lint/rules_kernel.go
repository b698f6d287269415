package lint

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
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

// Command-line parameters each KRN repair adds or removes.
var (
	earlyParams = []string{"earlyprintk=ttyS0,115200"}
	delayParams = []string{"rootdelay=300"}
	quietParams = []string{"rhgb", "quiet", "splash"}
)

// repairCmdlines edits every place a command line lives: the params of
// each boot entry, GRUB_CMDLINE_LINUX (adds) and both GRUB_CMDLINE
// variables (removes) in /etc/default/grub, so the image boots right now
// and after the next grub-mkconfig alike.
func repairCmdlines(t *Target, o *Overlay, add, remove []string) error {
	locs, err := t.cmdlineLocations()
	if err != nil {
		return err
	}
	return editCmdlines(o, locs, add, remove)
}

// editCmdlines edits the command lines at locs.
func editCmdlines(o *Overlay, locs []kernel.Location, add, remove []string) error {
	hasGrubenv := slices.ContainsFunc(locs, func(l kernel.Location) bool { return l.Kind == kernel.KindGrubenv })
	for _, l := range locs {
		name := strings.TrimPrefix(l.Path, "/")
		if l.Kind == kernel.KindDefaultGrub {
			if err := repairDefaultGrub(o, l, add, remove); err != nil {
				return err
			}
			continue
		}
		// A command line over several lines (a BLS entry's options): each
		// loses what is removed, and the last gains what none holds.
		var held []string
		for _, n := range l.Earlier {
			err := editLine(o, name, n, func(line string) (string, error) {
				edited, ok := kernel.EditLine(l.Kind, line, nil, remove)
				if !ok {
					return "", fmt.Errorf("%s:%d no longer looks like a %s line", l.Path, n, l.Kind)
				}
				c, _ := kernel.LineParams(l.Kind, edited)
				held = append(held, c.String())
				return edited, nil
			})
			if err != nil {
				return err
			}
		}
		earlier := kernel.ParseCmdline(strings.Join(held, " "))
		missing := slices.DeleteFunc(slices.Clone(add), earlier.Holds)
		if l.Kernelopts && hasGrubenv {
			// The entry expands grubenv's kernelopts (RHEL 8), which
			// gains them: here they would come twice.
			missing = nil
		}
		err := editLine(o, name, l.Line, func(line string) (string, error) {
			edited, ok := kernel.EditLine(l.Kind, line, missing, remove)
			if !ok {
				return "", fmt.Errorf("%s:%d no longer looks like a %s line", l.Path, l.Line, l.Kind)
			}
			return edited, nil
		})
		if err != nil {
			return err
		}
		if l.Kind == kernel.KindGrubenv {
			if err := repadGrubenv(o, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// repairDefaultGrub edits every defaults file (see
// kernel.EditDefaultGrub) as they stand now: earlier repairs of this fix
// may have changed them (a new GRUB_CMDLINE_LINUX line), so every
// parameter lands in one assignment rather than in rival ones of which
// the shell keeps only the last.
func repairDefaultGrub(o *Overlay, l kernel.Location, add, remove []string) error {
	texts := make([]string, len(l.Sources))
	for i, src := range l.Sources {
		b, err := o.Read(strings.TrimPrefix(src, "/"))
		if err != nil {
			return err
		}
		texts[i] = string(b)
	}
	for i, edited := range kernel.EditDefaultGrub(texts, add, remove) {
		if edited != texts[i] {
			o.Write(strings.TrimPrefix(l.Sources[i], "/"), []byte(edited))
		}
	}
	return nil
}

// repadGrubenv keeps GRUB's environment block exactly 1024 bytes (see
// kernel.PadGrubenv).
func repadGrubenv(o *Overlay, name string) error {
	b, _ := o.Read(name)
	padded, ok := kernel.PadGrubenv(b)
	if !ok {
		return fmt.Errorf("/%s would outgrow GRUB's 1024-byte environment block", name)
	}
	o.Write(name, padded)
	return nil
}

func repairSerialConsole(t *Target, o *Overlay) error {
	console := "console=" + serialDevice(t)
	if serialDevice(t) == "ttyS0" {
		console += ",115200n8"
	}
	return repairCmdlines(t, o, []string{console}, nil)
}
func repairEarlyPrintk(t *Target, o *Overlay) error { return repairCmdlines(t, o, earlyParams, nil) }
func repairRootDelay(t *Target, o *Overlay) error {
	if root, err := t.root(); err == nil && initramfsToolOf(root).name == "initramfs-tools" {
		o.Note("rootdelay=300 not added: %s", strings.TrimPrefix(rootDelaySleeps, "leave it out: "))
		return nil
	}
	return repairCmdlines(t, o, delayParams, nil)
}
func repairQuiet(t *Target, o *Overlay) error { return repairCmdlines(t, o, nil, quietParams) }

func repairCrashKernel(t *Target, o *Overlay) error {
	return repairCmdlines(t, o, nil, []string{"crashkernel=auto"})
}

func repairATAPI(t *Target, o *Overlay) error {
	return repairCmdlines(t, o, nil, []string{"libata.atapi_enabled=0", "reserve=0x1f0,0x8"})
}

// repairRootByID names the root by its filesystem's UUID wherever a
// command line names it by device (root=/dev/sda1 becomes root=UUID=...).
func repairRootByID(t *Target, o *Overlay) error {
	locs, err := t.cmdlineLocations()
	if err != nil {
		return err
	}
	for _, l := range locs {
		for _, dev := range l.Cmdline.Values("root") {
			if !isDeviceName(dev) {
				continue
			}
			uuid, err := uuidOfDevice(t, dev)
			if err != nil {
				return err
			}
			if err := editCmdlines(o, []kernel.Location{l}, []string{"root=UUID=" + uuid}, []string{"root=" + dev}); err != nil {
				return err
			}
		}
	}
	return nil
}

// deviceRE splits a kernel device name into its disk (the letters, or the
// namespace of NVMe controller 0) and partition number.
var deviceRE = regexp.MustCompile(`^/dev/(?:(?:sd|vd|hd|xvd)([a-z]+)|nvme0n(\d+)p)(\d+)$`)

// uuidOfDevice finds the filesystem a root= device name means: in an
// image, that partition of the first disk (sda, vda, nvme0n1), which is
// the image itself; in a tree, where no disk is known, the root fstab names
// by UUID, since root= names the root whatever the device.
func uuidOfDevice(t *Target, dev string) (string, error) {
	if t.Guest.Layout == nil {
		entries, err := t.fstab()
		if err != nil {
			return "", err
		}
		for _, e := range entries {
			if uuid, ok := strings.CutPrefix(e.Spec, "UUID="); ok && e.File == "/" {
				return uuid, nil
			}
		}
		return "", fmt.Errorf("%s: the root's UUID is known only from the disk image, and /etc/fstab does not name the root by UUID; run fix on the image, or set UUID= by hand", dev)
	}
	n, ok := partitionOfThisDisk(dev)
	if !ok {
		return "", fmt.Errorf("%s is not a partition of this image's disk; name it by UUID= by hand", dev)
	}
	for _, v := range t.Guest.Layout.Volumes {
		if v.Partition != nil && strconv.Itoa(v.Partition.Number) == n {
			if v.FS.UUID == "" {
				return "", fmt.Errorf("%s (%s) holds no filesystem with a UUID", dev, v.Name)
			}
			return v.FS.UUID, nil
		}
	}
	return "", fmt.Errorf("%s: this image has no partition %s", dev, n)
}

// partitionOfThisDisk gives the partition number a device name means on
// the guest's first disk (sda, vda, xvda, nvme0n1), which is the image.
func partitionOfThisDisk(dev string) (string, bool) {
	m := deviceRE.FindStringSubmatch(dev)
	if m == nil || (m[1] != "" && m[1] != "a") || (m[2] != "" && m[2] != "1") {
		return "", false
	}
	return m[3], true
}
