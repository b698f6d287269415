package kernel

import (
	"regexp"
	"strings"
)

// paramsPart splits a boot entry's line into what comes before its kernel
// parameters and the parameters, by the kind of place the line is in.
var paramsPart = map[string]*regexp.Regexp{
	KindGrubCfg:       regexp.MustCompile(`^(\s*\S+\s+\S+)(.*)$`),
	KindBLS:           regexp.MustCompile(`^(\s*options)(.*)$`),
	KindExtlinux:      regexp.MustCompile(`(?i)^(\s*append)(.*)$`),
	KindKernelCmdline: regexp.MustCompile(`^()(.*)$`),
	KindGrubenv:       regexp.MustCompile(`^(kernelopts=)(.*)$`),
	KindGrubLegacy:    regexp.MustCompile(`^(\s*kernel\s+\S+)(.*)$`),
}

// splitLine splits a line of a boot entry of kind into what comes before
// its kernel parameters and the parameters; false when the line is not of
// that kind.
func splitLine(kind, line string) (head, params string, ok bool) {
	re, ok := paramsPart[kind]
	if !ok {
		return "", "", false
	}
	m := re.FindStringSubmatch(line)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// LineParams is the kernel parameters of the line of a boot entry of kind;
// false when the line is not of that kind.
func LineParams(kind, line string) (Cmdline, bool) {
	_, params, ok := splitLine(kind, line)
	return ParseCmdline(params), ok
}

// EditLine adds and removes parameters (see EditParams) in the line of a
// boot entry of kind (grub.cfg's linux line, a BLS entry's options,
// extlinux's append, /etc/kernel/cmdline, grubenv's kernelopts, GRUB
// legacy's kernel line), keeping every other byte. It is false when the
// line is not of that kind.
func EditLine(kind, line string, add, remove []string) (string, bool) {
	head, params, ok := splitLine(kind, line)
	if !ok {
		return "", false
	}
	return head + EditParams(params, add, remove), true
}

// GrubenvSize is the fixed size of GRUB's environment block.
const GrubenvSize = 1024

// PadGrubenv pads GRUB's environment block with '#' to its 1024 bytes, as
// grub-editenv writes it. It is false when the variables no longer fit.
func PadGrubenv(b []byte) ([]byte, bool) {
	body := string(b)
	if i := strings.LastIndexByte(body, '\n') + 1; strings.Trim(body[i:], "#") == "" {
		body = body[:i] // the old padding
	} else {
		// The last variable has no newline: padding after it would be
		// read as part of its value.
		body += "\n"
	}
	if len(body) > GrubenvSize {
		return nil, false
	}
	return []byte(body + strings.Repeat("#", GrubenvSize-len(body))), true
}
