package lint

import (
	"fmt"
	"strings"

	"github.com/vhdprep/vhdprep/kernel"
	"github.com/vhdprep/vhdprep/rootfs"
)

// ruleKeys are the parameters the kernel rules look at. A generated
// configuration carrying one that /etc/default/grub lacks loses it at the
// next regeneration, so the mismatch is reported in that direction too.
var ruleKeys = []string{"console", "earlyprintk", "rootdelay", "numa", "quiet", "rhgb", "splash"}

// checkGeneratedConfig compares the command line grub-mkconfig would write
// from /etc/default/grub with what the boot configuration carries now: the
// linux lines of grub.cfg's normal entries, grubenv's kernelopts where BLS
// entries expand it (RHEL 8), and BLS options.
func checkGeneratedConfig(t *Target) ([]Finding, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	if _, err := root.ReadFile("etc/default/grub"); err != nil {
		if isNotExist(err) {
			return nil, Skip("no /etc/default/grub: nothing regenerates the boot configuration from defaults")
		}
		return nil, Skip("/etc/default/grub is not readable: %v", err)
	}
	for _, p := range append(kernel.DefaultGrubFiles(root), kernel.GeneratedConfigs(root)...) {
		if _, err := root.ReadFile(p); err != nil {
			return nil, Skip("/%s is not readable: %v", p, err)
		}
	}
	t.learn()
	defaults, generated := splitGenerated(t.cmdlines)
	if len(generated) == 0 {
		return nil, Skip("no generated boot configuration (grub.cfg linux lines, grubenv kernelopts, BLS options) to compare /etc/default/grub with")
	}
	// Entries of one file that differ alike (a kernel's simple and advanced
	// entries) make one finding, at the first.
	type mismatch struct {
		at             kernel.Location
		missing, extra []string
		entries        int
	}
	var found []*mismatch
	byFile := map[string]*mismatch{}
	for _, l := range generated {
		missing, extra := cmdlineDiff(defaults.Cmdline, l.Cmdline)
		if len(missing) == 0 && len(extra) == 0 {
			continue
		}
		key := l.Path + "\x00" + strings.Join(missing, " ") + "\x00" + strings.Join(extra, " ")
		if m, ok := byFile[key]; ok {
			m.entries++
			continue
		}
		byFile[key] = &mismatch{at: l, missing: missing, extra: extra, entries: 1}
		found = append(found, byFile[key])
	}
	var fs []Finding
	for _, m := range found {
		fs = append(fs, Finding{
			Message:  mismatchMessage(defaults, m.at, m.entries, m.missing, m.extra),
			Location: Location{File: m.at.Path, Line: m.at.Line},
			Fix:      "in the guest (chroot): " + regenerateCommand(root, m.at, m.missing, m.extra),
		})
	}
	return fs, nil
}

// splitGenerated picks out /etc/default/grub's command line (empty when it
// sets neither variable) and the generated ones that should agree with it.
// Recovery entries (GRUB_CMDLINE_LINUX only, plus "single" or "recovery")
// and memtest entries are left out; a BLS entry that expands $kernelopts is
// compared through grubenv's line, which is what regeneration rewrites.
func splitGenerated(locs []kernel.Location) (defaults kernel.Location, generated []kernel.Location) {
	defaults = kernel.Location{Path: "/etc/default/grub"}
	hasGrubenv, expanded := false, false
	for _, l := range locs {
		hasGrubenv = hasGrubenv || l.Kind == kernel.KindGrubenv
		expanded = expanded || l.Kind == kernel.KindBLS && l.Kernelopts
	}
	for _, l := range locs {
		switch l.Kind {
		case kernel.KindDefaultGrub:
			defaults = l
		case kernel.KindGrubCfg:
			if !isRecoveryEntry(l) && !strings.Contains(l.Kernel, "memtest") {
				generated = append(generated, l)
			}
		case kernel.KindGrubenv:
			if expanded {
				generated = append(generated, l)
			}
		case kernel.KindBLS:
			if !(l.Kernelopts && hasGrubenv) {
				generated = append(generated, l)
			}
		}
	}
	return defaults, generated
}

func isRecoveryEntry(l kernel.Location) bool {
	return strings.Contains(l.Entry, "(recovery mode)") || l.Cmdline.Has("single") || l.Cmdline.Has("recovery")
}

// cmdlineDiff lists the defaults' parameters the generated line lacks, and
// the generated line's parameters of ruleKeys the defaults lack. GRUB
// variables ($vt_handoff, $tuned_params) are GRUB's, not the defaults'.
func cmdlineDiff(defaults, generated kernel.Cmdline) (missing, extra []string) {
	have, want := paramSet(generated), paramSet(defaults)
	for _, p := range defaults.Params() {
		if tok := paramText(p); !have[tok] && !strings.HasPrefix(tok, "$") {
			missing = append(missing, tok)
			have[tok] = true // each once
		}
	}
	for _, p := range generated.Params() {
		if tok := paramText(p); !want[tok] && contains(ruleKeys, p.Key) {
			extra = append(extra, tok)
			want[tok] = true
		}
	}
	return missing, extra
}

func paramSet(c kernel.Cmdline) map[string]bool {
	set := map[string]bool{}
	for _, p := range c.Params() {
		set[paramText(p)] = true
	}
	return set
}

func paramText(p kernel.Param) string {
	if p.HasValue {
		return p.Key + "=" + p.Value
	}
	return p.Key
}

func mismatchMessage(defaults, l kernel.Location, entries int, missing, extra []string) string {
	where := describeEntry(l)
	if entries > 1 {
		where += fmt.Sprintf(" and %d more", entries-1)
	}
	defaultsAt := defaults.Path
	if defaults.Line > 0 {
		defaultsAt = fmt.Sprintf("%s:%d", defaults.Path, defaults.Line)
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "lacks "+strings.Join(missing, " ")+", which "+defaultsAt+" sets")
	}
	if len(extra) > 0 {
		parts = append(parts, "carries "+strings.Join(extra, " ")+", which "+defaultsAt+" does not")
	}
	return fmt.Sprintf("%s (%s) %s: the defaults were edited and the boot configuration never regenerated", l.Path, where, strings.Join(parts, " and "))
}

// regenerateCommand is how the guest's own tools rewrite l from the
// defaults: update-grub or grub-mkconfig/grub2-mkconfig for grub.cfg and
// RHEL 8's grubenv, grubby for BLS entries (which grub2-mkconfig leaves).
func regenerateCommand(root rootfs.FS, l kernel.Location, missing, extra []string) string {
	mkconfig := "grub-mkconfig"
	if existsAny(root, []string{"usr/sbin/grub2-mkconfig", "usr/bin/grub2-mkconfig", "sbin/grub2-mkconfig"}) || strings.Contains(l.Path, "grub2") {
		mkconfig = "grub2-mkconfig"
	}
	switch l.Kind {
	case kernel.KindGrubenv:
		return mkconfig + " -o /boot/grub2/grub.cfg (it rewrites kernelopts in " + l.Path + ")"
	case kernel.KindBLS:
		cmd := "grubby --update-kernel=ALL"
		if len(missing) > 0 {
			cmd += fmt.Sprintf(" --args=%q", strings.Join(missing, " "))
		}
		if len(extra) > 0 {
			cmd += fmt.Sprintf(" --remove-args=%q", strings.Join(extra, " "))
		}
		return cmd
	}
	if l.Path == "/boot/grub/grub.cfg" && existsAny(root, []string{"usr/sbin/update-grub", "sbin/update-grub"}) {
		return "update-grub"
	}
	return mkconfig + " -o " + l.Path
}
