package kernel

import (
	"strings"
)

// Param is one kernel parameter: key or key=value.
type Param struct {
	Key      string
	Value    string
	HasValue bool
}

// Cmdline is a parsed kernel command line. Parameters after "--" belong to
// init, as the kernel hands them on.
type Cmdline struct {
	Params []Param
	Init   []string
}

// ParseCmdline splits a command line the way the kernel does: on white
// space, except inside double quotes (param="a b"), with "--" ending the
// kernel's own parameters.
func ParseCmdline(s string) Cmdline {
	var c Cmdline
	inInit := false
	for _, word := range splitQuoted(s) {
		if inInit {
			c.Init = append(c.Init, word)
			continue
		}
		if word == "--" {
			inInit = true
			continue
		}
		k, v, ok := strings.Cut(word, "=")
		c.Params = append(c.Params, Param{Key: k, Value: strings.Trim(v, `"`), HasValue: ok})
	}
	return c
}

func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
			inWord = true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// Has tells whether key is present, with or without a value.
func (c Cmdline) Has(key string) bool { return len(c.Values(key)) > 0 || c.flag(key) }

func (c Cmdline) flag(key string) bool {
	for _, p := range c.Params {
		if p.Key == key {
			return true
		}
	}
	return false
}

// Values lists every value key is given (console= may appear repeatedly).
func (c Cmdline) Values(key string) []string {
	var vs []string
	for _, p := range c.Params {
		if p.Key == key && p.HasValue {
			vs = append(vs, p.Value)
		}
	}
	return vs
}

// HasValuePrefix tells whether key has a value starting with prefix, as
// console=ttyS0,115200n8 has "ttyS0".
func (c Cmdline) HasValuePrefix(key, prefix string) bool {
	for _, v := range c.Values(key) {
		if v == prefix || strings.HasPrefix(v, prefix+",") {
			return true
		}
	}
	return false
}
