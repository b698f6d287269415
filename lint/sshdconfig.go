package lint

import (
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/vhdprep/vhdprep/rootfs"
)

// sshd's configuration, read as sshd reads it (OpenSSH's servconf.c).
const (
	sshdConfigFile = "etc/ssh/sshd_config"
	sshdDir        = "/etc/ssh" // what a relative Include is relative to
)

// sshdEntry is a keyword sshd reads unconditionally, in its order: each
// Include is one, followed by the entries of the files it reads.
type sshdEntry struct {
	key  string   // in lower case
	args []string // an Include's are absolute globs
	at   Location
}

// sshdEntries reads sshd_config as sshd does: keywords in any case, apart
// from their arguments by blanks or one '=', arguments in double quotes or
// not, '#' ending them; each Include read where it stands (its globs,
// relative to /etc/ssh, matched in lexical order; a glob that matches
// nothing is no error); nothing after a Match line of a file, which is
// conditional (and, as in sshd, only to the end of that file). Includes
// are read within includes' bounds.
func sshdEntries(root rootfs.FS) ([]sshdEntry, error) {
	var out []sshdEntry
	in := includes{root: root}
	var read func(name string, depth int) error
	read = func(name string, depth int) error {
		b, err := in.file(name, depth)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			key, args := sshdLine(line)
			if key == "" {
				continue
			}
			if key == "match" {
				return nil
			}
			e := sshdEntry{key: key, args: args, at: Location{File: "/" + name, Line: i + 1}}
			if key == "include" {
				for j, a := range args {
					if !strings.HasPrefix(a, "/") {
						e.args[j] = sshdDir + "/" + a
					}
				}
			}
			out = append(out, e)
			if key != "include" {
				continue
			}
			for _, glob := range e.args {
				files, err := fs.Glob(root, strings.TrimPrefix(glob, "/"))
				if err != nil {
					continue // a bad pattern: sshd refuses it too
				}
				sort.Strings(files)
				for _, f := range files {
					if err := read(f, depth+1); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	return out, read(sshdConfigFile, 0)
}

// sshdLine is a line's keyword, in lower case, and its arguments; no
// keyword for a blank line, a comment or a keyword without an argument
// (which sshd refuses).
func sshdLine(line string) (key string, args []string) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", nil
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return "", nil
	}
	key, rest := line[:i], strings.TrimLeft(line[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = rest[1:]
	}
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" || rest[0] == '#' {
			break
		}
		if rest[0] == '"' {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return "", nil // an unclosed quote: sshd refuses the line
			}
			args, rest = append(args, rest[1:1+end]), rest[2+end:]
			continue
		}
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		args, rest = append(args, rest[:end]), rest[end:]
	}
	if len(args) == 0 {
		return "", nil
	}
	return strings.ToLower(key), args
}

// sshdConfig is the value sshd takes for each keyword (the first it
// reads) and where it reads it.
func sshdConfig(root rootfs.FS) (map[string]Location, map[string]string, error) {
	entries, err := sshdEntries(root)
	if err != nil {
		return nil, nil, err
	}
	locs, vals := map[string]Location{}, map[string]string{}
	for _, e := range entries {
		if _, seen := vals[e.key]; !seen && e.key != "include" {
			vals[e.key], locs[e.key] = e.args[0], e.at
		}
	}
	return locs, vals, nil
}

// sshdIncludes tells whether an Include sshd reads before the entry at
// (every Include, when at is nil) reads the file name.
func sshdIncludes(entries []sshdEntry, at *Location, name string) bool {
	for _, e := range entries {
		if at != nil && e.at == *at {
			return false
		}
		if e.key != "include" {
			continue
		}
		for _, glob := range e.args {
			if ok, _ := path.Match(glob, name); ok {
				return true
			}
		}
	}
	return false
}
