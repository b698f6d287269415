package kernel

import (
	"strings"
)

// EditParams changes the parameters in a command-line text, keeping every
// other byte as it was: params whose key is in remove go (an entry with a
// value, such as crashkernel=auto, removes only that exact word), each with
// one run of white space next to it, and add are appended, each unless a param with
// the same key (and, for console=, the same device) is already there.
func EditParams(text string, add []string, remove []string) string {
	out := text
	for _, key := range remove {
		out = removeKey(out, key)
	}
	have := ParseCmdline(out)
	for _, p := range add {
		key, val, _ := strings.Cut(p, "=")
		if key == "console" {
			dev, _, _ := strings.Cut(val, ",")
			if have.HasValuePrefix("console", dev) {
				continue
			}
		} else if have.Has(key) {
			continue
		}
		if strings.TrimSpace(out) == "" {
			out = strings.TrimRight(out, " \t") + p
		} else {
			out = strings.TrimRight(out, " \t") + " " + p
		}
		have = ParseCmdline(out)
	}
	return out
}

// removeKey drops every word whose key is key.
func removeKey(text, key string) string {
	for {
		start, end := findWord(text, key)
		if start < 0 {
			return text
		}
		// Take the white space after the word, or else the one before it.
		e := end
		for e < len(text) && (text[e] == ' ' || text[e] == '\t') {
			e++
		}
		s := start
		if e == end || e == len(text) {
			for s > 0 && (text[s-1] == ' ' || text[s-1] == '\t') {
				s--
			}
			if e == len(text) {
				e = end
			}
		}
		text = text[:s] + text[e:]
	}
}

// findWord finds the first unquoted word whose key (before =) is key, or
// that is exactly key when key has a value.
func findWord(text, key string) (int, int) {
	quoted := false
	start := -1
	for i := 0; i <= len(text); i++ {
		sep := i == len(text) || (!quoted && (text[i] == ' ' || text[i] == '\t'))
		if i < len(text) && text[i] == '"' {
			quoted = !quoted
		}
		if sep {
			if start >= 0 {
				w := text[start:i]
				if k, _, _ := strings.Cut(w, "="); w == key || (!strings.Contains(key, "=") && k == key) {
					return start, i
				}
			}
			start = -1
		} else if start < 0 {
			start = i
		}
	}
	return -1, -1
}
