package lint

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vhdprep/vhdprep/diskimage"
	"github.com/vhdprep/vhdprep/guest/agents"
	"github.com/vhdprep/vhdprep/internal/shell"
	"github.com/vhdprep/vhdprep/rootfs/write"
)

// The rule repaired by vhdprep agent inject rather than fix.
const ruleAgent = "AGT001"

// remedy says what vhdprep can really do about a failing rule on t: the
// command that does it, ready to paste (the image or --root DIR, and the
// flags it needs), or why no command can. The repair itself decides, run
// on a scratch overlay: a rule whose repair changes nothing here, or fails,
// has no command. Both are empty when vhdprep has nothing for the rule.
func remedy(t *Target, r *Rule) (command string, err error) {
	defer func() {
		if p := recover(); p != nil {
			command, err = "", fmt.Errorf("internal error in the repair of %s: %v; please report it", r.ID, p)
		}
	}()
	root, err := t.root()
	if err != nil {
		return "", nil
	}
	changes := func(do func(*Target, *Overlay) error) (bool, error) {
		o := write.NewOverlay(root)
		if err := do(t, o); err != nil {
			return false, err
		}
		return len(o.Changes()) > 0, nil
	}
	if r.Repair != nil {
		ok, err := changes(r.Repair)
		if !ok {
			return "", err
		}
		return fmt.Sprintf("vhdprep fix %s --only %s", t.arg(), r.ID), nil
	}
	if r.ID == ruleAgent {
		if err := injectSupported(t); err != nil {
			return "", err
		}
		return "vhdprep agent inject " + t.arg(), nil
	}
	users, err := loginUsers(t)
	if err != nil {
		return "", err
	}
	for _, s := range deprovisionSteps(users, true) {
		if s.id != r.ID {
			continue
		}
		ok, err := changes(s.do)
		if !ok {
			return "", err
		}
		cmd := "vhdprep deprovision " + t.arg()
		if r.ID == ruleAccounts {
			cmd += " --remove-users"
		}
		return cmd, nil
	}
	return "", nil
}

// The rule only deprovision --remove-users repairs.
const ruleAccounts = "SEC001"

// injectSupported says why vhdprep agent inject cannot install its agent
// in the target (see agents.InjectSupported).
func injectSupported(t *Target) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	return agents.InjectSupported(root)
}

// arg is how a vhdprep command names the target, quoted for the shell:
// the image, or --root and the directory.
func (t *Target) arg() string {
	if t.Container == nil {
		return "--root " + shell.Quote(t.Name)
	}
	return shell.Quote(t.Name)
}

// The placeholders of a catalog command where no image is at hand (check
// --list-rules, SARIF's rule help), for the user to substitute: they read
// as placeholders, never as a file name.
const (
	PlaceholderImage = "<image>"
	PlaceholderFixed = "<fixed.vhd>"
)

// CatalogFix is r's fix as the catalog lists it, without an image: a
// vhdprep command names the image <image> and the fixed VHD to make
// <fixed.vhd>. check names the real files.
func (r *Rule) CatalogFix() string {
	if !strings.HasPrefix(r.Fix, "vhdprep ") {
		return r.Fix
	}
	return strings.NewReplacer("IMAGE", PlaceholderImage, "FIXED", PlaceholderFixed).Replace(r.Fix)
}

// CatalogCommand is the vhdprep command that repairs r where it can (fix,
// or the other command its fix names: convert, resize, agent inject,
// deprovision), with the image as <image>; empty for a rule no vhdprep
// command repairs.
func (r *Rule) CatalogCommand() string {
	if r.Repair != nil && r.Fixable {
		return "vhdprep fix " + PlaceholderImage + " --only " + r.ID
	}
	words := strings.Fields(r.CatalogFix())
	if len(words) == 0 || words[0] != "vhdprep" {
		return ""
	}
	// The command's words, up to the prose after it.
	n := 1
	for _, w := range words[1:] {
		if !strings.HasPrefix(w, "-") && !strings.HasPrefix(w, "<") && !slices.Contains([]string{"convert", "resize", "agent", "inject", "deprovision", "fix"}, w) {
			break
		}
		n++
	}
	cmd := strings.Join(words[:n], " ")
	if r.ID == ruleAccounts {
		cmd += " --remove-users"
	}
	return cmd
}

// pasteable puts the target into a catalog hint that names a vhdprep
// command with the placeholders IMAGE and FIXED (the fixed VHD to make).
func pasteable(t *Target, hint string) string {
	if !strings.HasPrefix(hint, "vhdprep ") {
		return hint
	}
	return strings.NewReplacer("IMAGE", t.arg(), "FIXED", shell.Quote(diskimage.FixedVHDName(t.Name))).Replace(hint)
}
