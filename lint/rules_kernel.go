package lint

import (
	"fmt"
	"regexp"
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
	earlyParams  = []string{"earlyprintk=ttyS0,115200"}
	delayParams  = []string{"rootdelay=300"}
	quietParams  = []string{"rhgb", "quiet", "splash"}
	paramsPartRE = map[string]*regexp.Regexp{
		kernel.KindGrubCfg:       regexp.MustCompile(`^(\s*\S+\s+\S+)(.*)$`),
		kernel.KindBLS:           regexp.MustCompile(`^(\s*options)(.*)$`),
		kernel.KindExtlinux:      regexp.MustCompile(`(?i)^(\s*append)(.*)$`),
		kernel.KindKernelCmdline: regexp.MustCompile(`^()(.*)$`),
		kernel.KindGrubenv:       regexp.MustCompile(`^(kernelopts=)(.*)$`),
		kernel.KindGrubLegacy:    regexp.MustCompile(`^(\s*kernel\s+\S+)(.*)$`),
	}
	defaultGrubRE = regexp.MustCompile(`^(\s*(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=)(["']?)(.*?)(["']?)(\s*)$`)
)

// grubenvSize is the fixed size of GRUB's environment block.
const grubenvSize = 1024

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
	for _, l := range locs {
		name := strings.TrimPrefix(l.Path, "/")
		if l.Kind == kernel.KindDefaultGrub {
			if err := repairDefaultGrub(o, l, add, remove); err != nil {
				return err
			}
			continue
		}
		re := paramsPartRE[l.Kind]
		err := o.editLine(name, l.Line, func(line string) (string, error) {
			m := re.FindStringSubmatch(line)
			if m == nil {
				return "", fmt.Errorf("%s:%d no longer looks like a %s line", l.Path, l.Line, l.Kind)
			}
			return m[1] + kernel.EditParams(m[2], add, remove), nil
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

// repairDefaultGrub removes parameters from both GRUB_CMDLINE variables in
// every defaults file, and adds parameters to GRUB_CMDLINE_LINUX's last
// assignment (which may build on earlier ones). Where that assignment
// spans lines, a new one after it builds on it; where no file assigns the
// variable, a new one goes after /etc/default/grub's last line.
func repairDefaultGrub(o *Overlay, l kernel.Location, add, remove []string) error {
	// Earlier repairs of this fix may have changed the defaults (a new
	// GRUB_CMDLINE_LINUX line): edit them as they stand now, so every
	// parameter lands in one assignment rather than in rival ones of which
	// the shell keeps only the last.
	var paths []string
	for _, src := range l.Sources {
		paths = append(paths, strings.TrimPrefix(src, "/"))
	}
	if now := kernel.DefaultGrubCmdline(paths, o.Read); len(now) == 1 {
		l = now[0]
	}
	// A parameter the other variable already gives every entry needs no
	// second copy.
	var missing []string
	for _, p := range add {
		if l.Cmdline.Add(p).String() != l.Cmdline.String() {
			missing = append(missing, p)
		}
	}
	add = missing
	for _, src := range l.Sources {
		var extra string
		if len(add) > 0 && src == l.Path && l.Var == kernel.VarCmdlineLinux {
			extra = fmt.Sprintf("GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX %s\"", strings.Join(add, " "))
		} else if len(add) > 0 && src == l.Sources[0] && l.Var != kernel.VarCmdlineLinux {
			extra = fmt.Sprintf("GRUB_CMDLINE_LINUX=%q", strings.Join(add, " "))
		}
		name := strings.TrimPrefix(src, "/")
		b, err := o.Read(name)
		if err != nil {
			return err
		}
		lines := strings.Split(string(b), "\n")
		for i, line := range lines {
			m := defaultGrubRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			// Parameters are added only to an assignment all on this line
			// (its quotes close, no backslash continues it).
			var adds []string
			oneLine := m[3] == m[5] && !strings.HasSuffix(m[4], "\\")
			open, close := m[3], m[5]
			if open == "" {
				// A bare word: more than one parameter needs quotes, which
				// mean the same only where it has nothing they change.
				oneLine = oneLine && !strings.ContainsAny(m[4], "\\\"`'")
				open, close = `"`, `"`
			}
			if m[2] == kernel.VarCmdlineLinux && src == l.Path && i+1 == l.Line && oneLine && len(add) > 0 {
				adds, extra = add, ""
			} else {
				open, close = m[3], m[5]
			}
			lines[i] = m[1] + open + kernel.EditParams(m[4], adds, remove) + close + m[6]
		}
		edited := strings.Join(lines, "\n")
		if extra != "" {
			if edited != "" && !strings.HasSuffix(edited, "\n") {
				edited += "\n"
			}
			edited += extra + "\n"
		}
		if edited != string(b) {
			o.Write(name, []byte(edited))
		}
	}
	return nil
}

// repadGrubenv keeps GRUB's environment block exactly 1024 bytes, as
// grub-editenv writes it: variables, each ending in a newline, then '#' to
// the end.
func repadGrubenv(o *Overlay, name string) error {
	b, _ := o.Read(name)
	body := string(b)
	if i := strings.LastIndexByte(body, '\n') + 1; strings.Trim(body[i:], "#") == "" {
		body = body[:i] // the old padding
	} else {
		// The last variable has no newline: padding after it would be
		// read as part of its value.
		body += "\n"
	}
	if len(body) > grubenvSize {
		return fmt.Errorf("/%s would outgrow GRUB's 1024-byte environment block", name)
	}
	o.Write(name, []byte(body+strings.Repeat("#", grubenvSize-len(body))))
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

func repairNUMAOff(t *Target, o *Overlay) error {
	return repairCmdlines(t, o, []string{"numa=off"}, nil)
}

func repairATAPI(t *Target, o *Overlay) error {
	return repairCmdlines(t, o, nil, []string{"libata.atapi_enabled=0", "reserve=0x1f0,0x8"})
}
