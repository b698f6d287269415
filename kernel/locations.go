package kernel

import (
	"bufio"
	"bytes"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Kinds of places a command line lives.
const (
	KindDefaultGrub   = "default-grub"   // /etc/default/grub: what the next grub-mkconfig writes
	KindGrubCfg       = "grub.cfg"       // the generated GRUB menu
	KindGrubenv       = "grubenv"        // RHEL 8's kernelopts
	KindBLS           = "bls"            // /boot/loader/entries/*.conf
	KindKernelCmdline = "kernel-cmdline" // /etc/kernel/cmdline (systemd-boot, UKIs)
	KindExtlinux      = "extlinux"       // extlinux/syslinux APPEND
	KindGrubLegacy    = "grub-legacy"    // GRUB 0.97's menu: kernel lines of grub.conf, menu.lst
)

// Location is a kernel command line and where it lives.
type Location struct {
	Path string // inside the guest, with a leading slash
	Line int
	// Earlier are the lines before Line that also hold part of it: a BLS
	// entry may have several options lines, which boot loaders join in
	// order (Boot Loader Specification). New parameters go on Line.
	Earlier []int
	Kind    string
	Entry   string // the menu entry ("submenu>entry" when nested), BLS title or extlinux label
	Kernel  string // the kernel it boots: a version (BLS) or an image path
	Var     string // the variable holding it: GRUB_CMDLINE_LINUX, kernelopts
	Cmdline Cmdline
	// Sources are, for the defaults, every file that makes them: a
	// change may have to be made in any.
	Sources []string
	// Kernelopts tells that a BLS entry's options expand grubenv's
	// $kernelopts (RHEL 8), so grubenv's line is what really changes it.
	Kernelopts bool
}

// Where GRUB's generated menu lives: BIOS installs, and the ESP
// (boot/efi/EFI/VENDOR/grub.cfg) on EFI ones.
var (
	grubCfgPaths = [...]string{"boot/grub/grub.cfg", "boot/grub2/grub.cfg"}
	espGrubCfgs  = "boot/efi/EFI/*/grub.cfg"
	grubenvPaths = [...]string{"boot/grub2/grubenv", "boot/grub/grubenv", "boot/efi/EFI/*/grubenv"}
	blsEntries   = "boot/loader/entries/*.conf"
	// GRUB legacy (0.97: RHEL and CentOS 6, old Debian and SUSE): RHEL's
	// grub.conf, with menu.lst a symlink to it, or menu.lst alone.
	grubLegacyPaths = [...]string{"boot/grub/grub.conf", "boot/grub/menu.lst"}
)

// varKernelopts is the grubenv variable RHEL 8's BLS entries expand.
const varKernelopts = "kernelopts"

// FindCmdlines finds every kernel command line in a guest: the defaults
// in /etc/default/grub (GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT
// together, as grub-mkconfig combines them for the default entry), each
// linux line of grub.cfg, grubenv's kernelopts, BLS entries (with
// $kernelopts expanded), /etc/kernel/cmdline, extlinux APPEND lines
// (Alpine's /boot/extlinux.conf among them) and GRUB legacy's kernel lines.
// Files that cannot be read are left out.
func FindCmdlines(fsys fs.FS) []Location {
	var out []Location
	out = append(out, defaultGrub(fsys)...)
	kernelopts := ""
	for _, p := range globAll(fsys, grubenvPaths[:]...) {
		if b, err := fs.ReadFile(fsys, p); err == nil {
			for i, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, varKernelopts+"="); ok {
					kernelopts = v
					out = append(out, Location{Path: "/" + p, Line: i + 1, Kind: KindGrubenv, Var: varKernelopts, Cmdline: ParseCmdline(v)})
				}
			}
			break
		}
	}
	for _, p := range globAll(fsys, append(grubCfgPaths[:], espGrubCfgs)...) {
		out = append(out, grubCfg(fsys, p)...)
	}
	for _, p := range globAll(fsys, blsEntries) {
		out = append(out, bls(fsys, p, kernelopts)...)
	}
	if b, err := fs.ReadFile(fsys, "etc/kernel/cmdline"); err == nil {
		text := strings.TrimRight(string(b), "\n")
		out = append(out, Location{Path: "/etc/kernel/cmdline", Line: 1, Kind: KindKernelCmdline, Cmdline: ParseCmdline(text)})
	}
	for _, p := range []string{"boot/extlinux.conf", "boot/extlinux/extlinux.conf", "boot/syslinux/syslinux.cfg", "extlinux.conf"} {
		out = append(out, extlinux(fsys, p)...)
	}
	for _, p := range grubLegacyFiles(fsys) {
		out = append(out, grubLegacy(fsys, p)...)
	}
	return out
}

// grubLegacyFiles lists GRUB legacy's menus, once each: a symlink to
// another of them (menu.lst -> grub.conf, as RHEL 6 ships it) is that
// file, and an edit belongs there.
func grubLegacyFiles(fsys fs.FS) []string {
	var out []string
	for _, p := range grubLegacyPaths {
		if _, err := fs.Stat(fsys, p); err != nil {
			continue
		}
		if target, err := fs.ReadLink(fsys, p); err == nil {
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			if slices.Contains(grubLegacyPaths[:], strings.TrimPrefix(path.Clean(target), "/")) {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// grubLegacy reads GRUB legacy's kernel lines ("kernel IMAGE PARAMS..."),
// each with the title of its entry.
func grubLegacy(fsys fs.FS, p string) []Location {
	var out []Location
	title := ""
	for i, line := range lines(fsys, p) {
		switch cmd, rest := firstWord(line); cmd {
		case "title":
			title = strings.TrimSpace(rest)
		case "kernel":
			image, params := firstWord(rest)
			if image == "" {
				continue
			}
			out = append(out, Location{Path: "/" + p, Line: i + 1, Kind: KindGrubLegacy, Entry: title, Kernel: image, Cmdline: ParseCmdline(strings.TrimLeft(params, " \t"))})
		}
	}
	return out
}

// GeneratedConfigs lists the files grub-mkconfig, grub2-mkconfig or grubby
// write from /etc/default/grub that exist in fsys: grub.cfg (BIOS and
// ESP), grubenv and BLS entries.
func GeneratedConfigs(fsys fs.FS) []string {
	out := globAll(fsys, append(append(grubCfgPaths[:], espGrubCfgs), grubenvPaths[:]...)...)
	return append(out, globAll(fsys, blsEntries)...)
}

// globAll expands each pattern (a plain path matches itself if it
// exists), in order.
func globAll(fsys fs.FS, patterns ...string) []string {
	var out []string
	for _, p := range patterns {
		m, _ := fs.Glob(fsys, p)
		out = append(out, m...)
	}
	return out
}

func lines(fsys fs.FS, p string) []string {
	b, err := fs.ReadFile(fsys, p)
	if err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// Where grub-mkconfig reads its defaults: /etc/default/grub, then (a
// Debian and Ubuntu addition) the drop-ins of /etc/default/grub.d in name
// order, which Ubuntu's cloud images set the console in.
const (
	defaultGrubPath    = "etc/default/grub"
	defaultGrubDropIns = "etc/default/grub.d/*.cfg"
)

// DefaultGrubFiles lists the defaults files fsys has, in the order
// grub-mkconfig sources them.
func DefaultGrubFiles(fsys fs.FS) []string {
	return globAll(fsys, defaultGrubPath, defaultGrubDropIns)
}

// grubFile is a defaults file's path and text.
type grubFile struct{ path, text string }

// defaultGrub reads the two GRUB_CMDLINE variables from every defaults
// file (unreadable ones are left out).
func defaultGrub(fsys fs.FS) []Location {
	var files []grubFile
	for _, p := range DefaultGrubFiles(fsys) {
		if b, err := fs.ReadFile(fsys, p); err == nil {
			files = append(files, grubFile{p, string(b)})
		}
	}
	return parseDefaultGrub(files)
}

// parseDefaultGrub works out the two GRUB_CMDLINE variables as sourcing
// the files in order would (see sourceDefaults), and reports them as one
// line, at GRUB_CMDLINE_LINUX's last assignment, where additions belong
// since every entry gets it.
func parseDefaultGrub(files []grubFile) []Location {
	var texts, sources []string
	for _, f := range files {
		texts = append(texts, f.text)
		sources = append(sources, "/"+f.path)
	}
	if len(files) == 0 {
		return nil
	}
	d := sourceDefaults(texts)
	v := VarCmdlineLinux
	p, ok := d.last[v]
	if !ok && len(d.last) > 0 {
		v = VarCmdlineDefault
		p = d.last[v]
	}
	// Defaults that assign neither variable are still what the next
	// grub-mkconfig writes from: an empty command line, reported at the
	// first file (line 0: no line holds it), where an edit adds one.
	return []Location{{Path: sources[p.file], Line: p.line, Kind: KindDefaultGrub, Entry: "defaults for grub-mkconfig", Var: v, Cmdline: d.cmdline(), Sources: sources}}
}

// grubCfg reports each linux line with the menu entry it belongs to,
// submenus joined with ">" as GRUB_DEFAULT names them.
func grubCfg(fsys fs.FS, p string) []Location {
	var out []Location
	var stack []string // titles of the open menuentry and submenu blocks
	for i, line := range lines(fsys, p) {
		switch cmd, rest := firstWord(line); cmd {
		case "menuentry", "submenu":
			if strings.HasSuffix(strings.TrimSpace(line), "{") {
				stack = append(stack, quotedTitle(line))
			}
		case "}":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case "linux", "linux16", "linuxefi":
			image, params := firstWord(rest)
			if image == "" {
				continue
			}
			// The parameters follow the image path, spaced as written.
			out = append(out, Location{Path: "/" + p, Line: i + 1, Kind: KindGrubCfg, Entry: strings.Join(stack, ">"), Kernel: image, Cmdline: ParseCmdline(strings.TrimLeft(params, " \t"))})
		}
	}
	return out
}

// firstWord splits a line of a boot loader's configuration into its first
// word and the rest, as GRUB, BLS (systemd-boot) and syslinux read it:
// words are separated by spaces and tabs, and only by them.
func firstWord(line string) (w, rest string) {
	line = strings.TrimLeft(line, " \t")
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		return line[:i], line[i:]
	}
	return line, ""
}

// quotedTitle is a menu entry's title: its first quoted word.
func quotedTitle(line string) string {
	for i := 0; i < len(line); i++ {
		if q := line[i]; q == '\'' || q == '"' {
			if j := strings.IndexByte(line[i+1:], q); j >= 0 {
				return line[i+1 : i+1+j]
			}
		}
	}
	return ""
}

// bls reads a Boot Loader Specification entry's command line: its options
// lines, joined in order.
func bls(fsys fs.FS, p, kernelopts string) []Location {
	title := strings.TrimSuffix(path.Base(p), ".conf")
	var texts []string
	var at []int
	version, image, expands := "", "", false
	for i, line := range lines(fsys, p) {
		k, v := firstWord(line)
		v = strings.TrimSpace(v)
		switch k {
		case "title":
			title = v
		case "version":
			version = v
		case "linux":
			image = v
		case "options":
			text := strings.ReplaceAll(v, "$"+varKernelopts, kernelopts)
			expands = expands || text != v
			texts, at = append(texts, text), append(at, i+1)
		}
	}
	if len(at) == 0 {
		return nil
	}
	loc := Location{Path: "/" + p, Line: at[len(at)-1], Kind: KindBLS, Entry: title, Kernel: version,
		Cmdline: ParseCmdline(strings.Join(texts, " ")), Kernelopts: expands}
	if len(at) > 1 {
		loc.Earlier = at[:len(at)-1]
	}
	if version == "" {
		loc.Kernel = image
	}
	return []Location{loc}
}

func extlinux(fsys fs.FS, p string) []Location {
	var out []Location
	label, image := "", ""
	for i, line := range lines(fsys, p) {
		k, v := firstWord(line)
		v = strings.TrimSpace(v)
		switch strings.ToUpper(k) {
		case "LABEL":
			label, image = v, ""
		case "LINUX", "KERNEL":
			image = v
		case "APPEND":
			out = append(out, Location{Path: "/" + p, Line: i + 1, Kind: KindExtlinux, Entry: label, Kernel: image, Cmdline: ParseCmdline(v)})
		}
	}
	return out
}
