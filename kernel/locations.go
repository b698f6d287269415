package kernel

import (
	"bufio"
	"bytes"
	"io/fs"
	"path"
	"sort"
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
)

// Location is a kernel command line and where it lives.
type Location struct {
	Path    string // inside the guest, with a leading slash
	Line    int
	Kind    string
	Entry   string // the menu entry or BLS title it belongs to
	Cmdline Cmdline
	Text    string
}

var grubCfgPaths = []string{"boot/grub/grub.cfg", "boot/grub2/grub.cfg"}

// FindCmdlines finds every kernel command line in a guest: the defaults
// in /etc/default/grub (GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT
// together, as grub-mkconfig combines them for the default entry), each
// linux line of grub.cfg, grubenv's kernelopts, BLS entries (with
// $kernelopts expanded), /etc/kernel/cmdline and extlinux APPEND lines.
func FindCmdlines(fsys fs.FS) []Location {
	var out []Location
	out = append(out, defaultGrub(fsys)...)
	kernelopts := ""
	for _, p := range []string{"boot/grub2/grubenv", "boot/grub/grubenv", "boot/efi/EFI/redhat/grubenv"} {
		if b, err := fs.ReadFile(fsys, p); err == nil {
			for i, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "kernelopts="); ok {
					kernelopts = v
					out = append(out, Location{Path: "/" + p, Line: i + 1, Kind: KindGrubenv, Cmdline: ParseCmdline(v), Text: v})
				}
			}
			break
		}
	}
	for _, p := range grubCfgPaths {
		out = append(out, grubCfg(fsys, p)...)
	}
	ents, _ := fs.ReadDir(fsys, "boot/loader/entries")
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".conf") {
			out = append(out, bls(fsys, "boot/loader/entries/"+e.Name(), kernelopts)...)
		}
	}
	if b, err := fs.ReadFile(fsys, "etc/kernel/cmdline"); err == nil {
		text := strings.TrimSpace(string(b))
		out = append(out, Location{Path: "/etc/kernel/cmdline", Line: 1, Kind: KindKernelCmdline, Cmdline: ParseCmdline(text), Text: text})
	}
	for _, p := range []string{"boot/extlinux/extlinux.conf", "boot/syslinux/syslinux.cfg", "extlinux.conf"} {
		out = append(out, extlinux(fsys, p)...)
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

// defaultGrub reads the two GRUB_CMDLINE variables (shell assignments,
// last one wins) and reports them as one line at the first's position.
func defaultGrub(fsys fs.FS) []Location {
	vals, at := map[string]string{}, map[string]int{}
	for i, line := range lines(fsys, "etc/default/grub") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || (k != "GRUB_CMDLINE_LINUX" && k != "GRUB_CMDLINE_LINUX_DEFAULT") {
			continue
		}
		vals[k], at[k] = shellUnquote(v), i+1
	}
	if len(at) == 0 {
		return nil
	}
	line := at["GRUB_CMDLINE_LINUX"]
	if line == 0 || (at["GRUB_CMDLINE_LINUX_DEFAULT"] != 0 && at["GRUB_CMDLINE_LINUX_DEFAULT"] < line) {
		line = at["GRUB_CMDLINE_LINUX_DEFAULT"]
	}
	text := strings.TrimSpace(vals["GRUB_CMDLINE_LINUX"] + " " + vals["GRUB_CMDLINE_LINUX_DEFAULT"])
	return []Location{{Path: "/etc/default/grub", Line: line, Kind: KindDefaultGrub, Entry: "defaults for grub-mkconfig", Cmdline: ParseCmdline(text), Text: text}}
}

// shellUnquote reads a shell word: 'single', "double" (with \ escapes) or bare.
func shellUnquote(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.Index(v, " #"); i >= 0 && !strings.HasPrefix(v, `"`) && !strings.HasPrefix(v, "'") {
		v = v[:i]
	}
	switch {
	case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
		return v[1 : len(v)-1]
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		return strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`).Replace(v[1 : len(v)-1])
	}
	return v
}

// grubCfg reports each linux line with the menu entry it belongs to.
func grubCfg(fsys fs.FS, p string) []Location {
	var out []Location
	entry := ""
	for i, line := range lines(fsys, p) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "menuentry", "submenu":
			if q := quotedTitle(line); q != "" {
				entry = q
			}
		case "linux", "linux16", "linuxefi":
			if len(f) < 2 {
				continue
			}
			text := strings.TrimSpace(strings.SplitN(strings.TrimSpace(line), f[1], 2)[1])
			out = append(out, Location{Path: "/" + p, Line: i + 1, Kind: KindGrubCfg, Entry: entry, Cmdline: ParseCmdline(text), Text: text})
		}
	}
	return out
}

func quotedTitle(line string) string {
	for _, q := range []string{"'", `"`} {
		if i := strings.Index(line, q); i >= 0 {
			if j := strings.Index(line[i+1:], q); j >= 0 {
				return line[i+1 : i+1+j]
			}
		}
	}
	return ""
}

// bls reads a Boot Loader Specification entry's options line.
func bls(fsys fs.FS, p, kernelopts string) []Location {
	title := strings.TrimSuffix(path.Base(p), ".conf")
	var loc *Location
	for i, line := range lines(fsys, p) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch k {
		case "title":
			title = strings.TrimSpace(v)
		case "options":
			text := strings.TrimSpace(strings.ReplaceAll(v, "$kernelopts", kernelopts))
			loc = &Location{Path: "/" + p, Line: i + 1, Kind: KindBLS, Cmdline: ParseCmdline(text), Text: text}
		}
	}
	if loc == nil {
		return nil
	}
	loc.Entry = title
	return []Location{*loc}
}

func extlinux(fsys fs.FS, p string) []Location {
	var out []Location
	label := ""
	for i, line := range lines(fsys, p) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(k) {
		case "LABEL":
			label = strings.TrimSpace(v)
		case "APPEND":
			text := strings.TrimSpace(v)
			out = append(out, Location{Path: "/" + p, Line: i + 1, Kind: KindExtlinux, Entry: label, Cmdline: ParseCmdline(text), Text: text})
		}
	}
	return out
}

// BootEntries are the locations the bootloader reads now (everything but
// /etc/default/grub, which only the next grub-mkconfig reads), sorted by
// path and line.
func BootEntries(locs []Location) []Location {
	var out []Location
	for _, l := range locs {
		if l.Kind != KindDefaultGrub {
			out = append(out, l)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
