package kernel

import (
	"strings"
)

// Param is one kernel parameter: key or key=value.
type Param struct {
	Key      string
	Value    string // without the double quotes around it
	HasValue bool
}

// Cmdline is a parsed kernel command line. It keeps the text it was parsed
// from, so String gives it back byte for byte and Add and Remove change
// only the bytes of the parameters they touch.
type Cmdline struct {
	text   string
	words  []word // the kernel's parameters, then init's after "--"
	dash   int    // index in words of the first word after "--", or len(words)
	dashAt int    // where the "--" is in text, or -1
	openAt int    // where a word starts that runs to the end inside quotes, or -1
}

// word is a parameter and where its text lies.
type word struct {
	Param
	start, end int
}

// ParseCmdline splits a command line the way the kernel does (next_arg in
// lib/cmdline.c): on white space, except inside double quotes
// (param="a b"); a value loses its surrounding quotes; a bare "--" ends the
// kernel's parameters, and the rest is handed to init.
func ParseCmdline(s string) Cmdline {
	c := Cmdline{text: s, dash: -1, dashAt: -1, openAt: -1}
	for i := skipSpace(s, 0); i < len(s); i = skipSpace(s, i) {
		w, next, open := nextArg(s, i)
		if open {
			c.openAt = i
		}
		switch {
		case c.dash < 0 && !w.HasValue && w.Key == "--":
			c.dash, c.dashAt = len(c.words), i
		case w.HasValue || w.Key != "": // a lone "" is no parameter
			c.words = append(c.words, w)
		}
		i = next
	}
	if c.dash < 0 {
		c.dash = len(c.words)
	}
	return c
}

// nextArg reads the word at s[i], as lib/cmdline.c's next_arg does, and
// tells whether it ends inside quotes.
func nextArg(s string, i int) (w word, next int, open bool) {
	start := i
	inQuote, quoted := false, false
	if s[i] == '"' {
		i++
		inQuote, quoted = true, true
	}
	from, equals := i, -1
	for ; i < len(s); i++ {
		if isSpace(s[i]) && !inQuote {
			break
		}
		if equals < 0 && s[i] == '=' && i > from {
			equals = i
		}
		if s[i] == '"' {
			inQuote = !inQuote
		}
	}
	w = word{start: start, end: i}
	if equals < 0 {
		w.Key = s[from:i]
		if quoted {
			w.Key = strings.TrimSuffix(w.Key, `"`)
		}
		return w, i, inQuote
	}
	// The kernel drops a value's opening quote, and the word's last
	// character when it is a quote closing that or a quoted word.
	w.Key, w.Value, w.HasValue = s[from:equals], s[equals+1:i], true
	if strings.HasPrefix(w.Value, `"`) {
		w.Value, quoted = w.Value[1:], true
	}
	if quoted {
		w.Value = strings.TrimSuffix(w.Value, `"`)
	}
	return w, i, inQuote
}

// isSpace is the kernel's isspace.
func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r'
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// sameKey compares parameter names as the kernel does (parameq): dashes
// and underscores alike.
func sameKey(a, b string) bool {
	return len(a) == len(b) && strings.ReplaceAll(a, "-", "_") == strings.ReplaceAll(b, "-", "_")
}

// String is the command line's text.
func (c Cmdline) String() string { return c.text }

// Params lists the kernel's parameters in order (not init's).
func (c Cmdline) Params() []Param {
	out := make([]Param, 0, c.dash)
	for _, w := range c.words[:c.dash] {
		out = append(out, w.Param)
	}
	return out
}

// Init lists what comes after "--", which the kernel hands to init.
func (c Cmdline) Init() []string {
	var out []string
	for _, w := range c.words[c.dash:] {
		out = append(out, c.text[w.start:w.end])
	}
	return out
}

// Has tells whether key is present, with or without a value.
func (c Cmdline) Has(key string) bool {
	for _, w := range c.words[:c.dash] {
		if sameKey(w.Key, key) {
			return true
		}
	}
	return false
}

// Values lists every value key is given, in order: all are reported,
// though for most parameters the kernel uses the last (console= uses
// them all, the last becoming /dev/console).
func (c Cmdline) Values(key string) []string {
	var vs []string
	for _, w := range c.words[:c.dash] {
		if w.HasValue && sameKey(w.Key, key) {
			vs = append(vs, w.Value)
		}
	}
	return vs
}

// Value is the value the kernel uses for key: the last one given.
func (c Cmdline) Value(key string) (string, bool) {
	vs := c.Values(key)
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// HasValuePrefix tells whether key has a value that is prefix or starts
// with prefix and a comma, as console=ttyS0,115200n8 has "ttyS0".
func (c Cmdline) HasValuePrefix(key, prefix string) bool {
	for _, v := range c.Values(key) {
		if v == prefix || strings.HasPrefix(v, prefix+",") {
			return true
		}
	}
	return false
}

// Console is a console= parameter: console=ttyS0,115200n8.
type Console struct {
	Device  string // ttyS0, tty1, hvc0
	Options string // 115200n8: speed, parity, bits, flow control
}

// Consoles lists the console= parameters in order; the kernel writes to
// them all, and the last is /dev/console, where init's output goes.
func (c Cmdline) Consoles() []Console {
	var out []Console
	for _, v := range c.Values("console") {
		dev, opts, _ := strings.Cut(v, ",")
		out = append(out, Console{Device: dev, Options: opts})
	}
	return out
}
