package kernel

import (
	"strings"
)

// Add appends param (key or key=value) after the kernel's last parameter,
// unless the command line has it already: a parameter with the same key,
// or for console= the same device. Every other byte stays as it was.
func (c Cmdline) Add(param string) Cmdline {
	if c.Holds(param) {
		return c
	}
	var at int
	var insert string
	switch {
	case c.dash > 0:
		at, insert = c.words[c.dash-1].end, " "+param
	case c.dashAt >= 0:
		// Only init's arguments: the parameter goes before the "--".
		at, insert = c.dashAt, param+" "
	default:
		at, insert = len(strings.TrimRight(c.text, " \t\n\v\f\r")), param
		if at > 0 {
			insert = " " + param
		}
	}
	if c.openAt >= 0 && c.openAt < at {
		// An unclosed quote would swallow the parameter: it goes before.
		at, insert = c.openAt, param+" "
	}
	return ParseCmdline(c.text[:at] + insert + c.text[at:])
}

// Holds tells whether the command line has param as Add sees it: a
// parameter with the same key, or for console= the same device.
func (c Cmdline) Holds(param string) bool {
	key, val, _ := strings.Cut(param, "=")
	if key == "console" {
		dev, _, _ := strings.Cut(val, ",")
		return c.HasValuePrefix("console", dev)
	}
	return c.Has(key)
}

// Remove drops every kernel parameter with key key, each with the white
// space after it (or, for the last, before it). A key with a value, such
// as crashkernel=auto, removes only parameters written exactly so.
func (c Cmdline) Remove(key string) Cmdline {
	text := c.text
	for i := c.dash - 1; i >= 0; i-- {
		w := c.words[i]
		raw := c.text[w.start:w.end]
		if strings.Contains(key, "=") {
			if raw != key {
				continue
			}
		} else if !sameKey(w.Key, key) {
			continue
		}
		start, end := w.start, skipBlank(text, w.end)
		if end == w.end || end == len(text) {
			// Nothing but a line's end follows: keep that, and take the
			// blanks before the word instead.
			end = w.end
			for start > 0 && isBlank(text[start-1]) {
				start--
			}
		}
		text = text[:start] + text[end:]
	}
	if text == c.text {
		return c
	}
	return ParseCmdline(text)
}

// isBlank is space or tab: the separators an edit takes with a word,
// leaving line ends alone.
func isBlank(b byte) bool { return b == ' ' || b == '\t' }

func skipBlank(s string, i int) int {
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return i
}

// EditParams changes the parameters in a command-line text: each of
// remove goes (see Remove), then each of add comes (see Add).
func EditParams(text string, add []string, remove []string) string {
	c := ParseCmdline(text)
	for _, key := range remove {
		c = c.Remove(key)
	}
	for _, p := range add {
		c = c.Add(p)
	}
	return c.String()
}
