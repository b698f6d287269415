package lint

import (
	"path"
	"regexp"
	"strings"

	"github.com/vhdprep/vhdprep/rootfs"
)

// sudo's policy, read as sudoers(5) says sudo reads it.
const (
	sudoersFile = "etc/sudoers"
	// sudoersVendorFile is where openSUSE's sudo reads its policy when
	// /etc/sudoers is not there.
	sudoersVendorFile = "usr/etc/sudoers"
)

// sudoersLine is a logical line of sudoers: continued lines joined, its
// comment cut, where it starts.
type sudoersLine struct {
	text string
	at   Location
}

// sudoersInclude is an include directive: @include, @includedir and the
// older #include, #includedir.
var sudoersInclude = regexp.MustCompile(`^[@#](include|includedir)\s+(\S+)`)

// sudoersLines reads the policy sudo reads: /etc/sudoers (else openSUSE's
// /usr/etc/sudoers), each include read where it stands (a relative path
// relative to the including file's directory; a directory's files in
// name order, skipping those whose name ends in '~' or has a '.', as sudo
// does), lines continued with a backslash joined, comments cut: '#' ends a
// line unless it starts an include or a user ID (#1000). Includes are read
// within includes' bounds.
func sudoersLines(root rootfs.FS) ([]sudoersLine, error) {
	var out []sudoersLine
	in := includes{root: root}
	var read func(name string, depth int) error
	read = func(name string, depth int) error {
		b, err := in.file(name, depth)
		if err != nil {
			return err
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			start, text := i, lines[i]
			// A comment line ends at its newline, backslash or not.
			comment := strings.HasPrefix(strings.TrimSpace(text), "#") && !sudoersInclude.MatchString(strings.TrimSpace(text))
			for !comment && strings.HasSuffix(text, "\\") && i+1 < len(lines) {
				i++
				text = text[:len(text)-1] + lines[i]
			}
			text = strings.TrimSpace(text)
			if m := sudoersInclude.FindStringSubmatch(text); m != nil {
				target := m[2]
				if !strings.HasPrefix(target, "/") {
					target = path.Join("/", path.Dir(name), target)
				}
				target = strings.TrimPrefix(target, "/")
				if m[1] == "include" {
					err = read(target, depth+1)
				} else {
					err = sudoersDir(root, target, func(f string) error { return read(f, depth+1) })
				}
				if err != nil {
					return err
				}
				continue
			}
			if text = cutSudoersComment(text); text != "" {
				out = append(out, sudoersLine{text: text, at: Location{File: "/" + name, Line: start + 1}})
			}
		}
		return nil
	}
	main := sudoersFile
	if !exists(root, main) && exists(root, sudoersVendorFile) {
		main = sudoersVendorFile
	}
	return out, read(main, 0)
}

// sudoersDir calls each for the files of dir that sudo's includedir reads.
func sudoersDir(root rootfs.FS, dir string, each func(string) error) error {
	ents, err := root.ReadDir(dir)
	if err != nil {
		return nil // sudo goes on without it
	}
	for _, e := range ents { // in name order
		if n := e.Name(); !e.IsDir() && !strings.HasSuffix(n, "~") && !strings.Contains(n, ".") {
			if err := each(dir + "/" + n); err != nil {
				return err
			}
		}
	}
	return nil
}

// cutSudoersComment drops a line's comment: from a '#' outside double
// quotes that is not a user ID's (#1000).
func cutSudoersComment(s string) string {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == '#' && !quoted && (i+1 == len(s) || s[i+1] < '0' || s[i+1] > '9'):
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

// sudoersDefaults splits a Defaults line into its binding ("" for plain
// Defaults, else the text from ':', '@', '>' or '!' on) and its
// parameters; ok is false for any other line.
func sudoersDefaults(text string) (binding string, params []string, ok bool) {
	rest, ok := strings.CutPrefix(text, "Defaults")
	if !ok || rest == "" || !strings.ContainsAny(rest[:1], " \t:@>!") {
		return "", nil, false
	}
	if strings.ContainsAny(rest[:1], ":@>!") {
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			return "", nil, false
		}
		binding, rest = rest[:i], rest[i:]
	}
	quoted, from := false, 0
	for i := 0; i <= len(rest); i++ {
		if i < len(rest) && rest[i] == '"' {
			quoted = !quoted
		}
		if i == len(rest) || rest[i] == ',' && !quoted {
			if p := strings.TrimSpace(rest[from:i]); p != "" {
				params = append(params, p)
			}
			from = i + 1
		}
	}
	return binding, params, true
}
