package kernel

import (
	"strings"
)

// The /etc/default/grub variables that make the kernel command line:
// grub-mkconfig puts both on normal entries, only the first on recovery
// entries.
const (
	VarCmdlineLinux   = "GRUB_CMDLINE_LINUX"
	VarCmdlineDefault = "GRUB_CMDLINE_LINUX_DEFAULT"
)

// assignment is a shell variable assignment and the line it starts on.
type assignment struct {
	name, value string
	line        int
}

// parseShellAssignments reads the simple shell /etc/default/grub is:
// NAME=value lines (optionally after "export"), values in 'single'
// quotes, "double" quotes (with \ escapes and $NAME or ${NAME} expanded
// from earlier assignments) or bare, lines continued by a trailing
// backslash or an open quote, # comments. Anything else (commands,
// conditionals) is skipped, as it cannot change a value here. vars holds
// the variables earlier files set, and gets this text's.
func parseShellAssignments(text string, vars map[string]string) []assignment {
	var out []assignment
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		start := i
		stmt := lines[i]
		// Join continued lines: a trailing backslash, or an open quote.
		for i+1 < len(lines) && continues(stmt) {
			i++
			stmt += "\n" + lines[i]
		}
		s := strings.TrimLeft(stmt, " \t")
		s = strings.TrimPrefix(s, "export ")
		s = strings.TrimLeft(s, " \t")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || !isShellName(s[:eq]) {
			continue
		}
		name := s[:eq]
		value := shellWord(s[eq+1:], vars)
		vars[name] = value
		out = append(out, assignment{name: name, value: value, line: start + 1})
	}
	return out
}

func isShellName(s string) bool {
	for i, r := range s {
		if !(r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && '0' <= r && r <= '9') {
			return false
		}
	}
	return s != ""
}

// continues tells whether a statement goes on to the next line: it ends
// in an unquoted backslash or inside quotes.
func continues(s string) bool {
	var quote byte
	escaped := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
		case c == '\\':
			escaped = true
		case quote == '"':
			if c == '"' {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return false // a comment runs to the line's end
		}
	}
	return quote != 0 || escaped
}

// shellWord reads one shell word (the right side of an assignment) up to
// unquoted white space, expanding variables from vars.
func shellWord(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == ';':
			return b.String()
		case c == '\\':
			if i+1 < len(s) {
				i++
				if s[i] != '\n' { // a backslash-newline joins lines
					b.WriteByte(s[i])
				}
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				end = len(s) - i - 1
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			i = doubleQuoted(s, i+1, vars, &b)
		case c == '$':
			i = expand(s, i, vars, &b)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// doubleQuoted reads a "..." string from s[i] (after the opening quote)
// into b and returns the index of the closing quote.
func doubleQuoted(s string, i int, vars map[string]string, b *strings.Builder) int {
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i
		case c == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0:
			i++
			if s[i] != '\n' {
				b.WriteByte(s[i])
			}
		case c == '$':
			i = expand(s, i, vars, b)
		default:
			b.WriteByte(c)
		}
	}
	return i
}

// expand writes the value of $NAME or ${NAME} at s[i] and returns the
// index of its last byte; a $ that starts neither is literal. A command
// substitution $(...) writes nothing: its output is unknown offline (RHEL 7
// puts $(rhcrashkernel-param) in GRUB_CMDLINE_LINUX).
func expand(s string, i int, vars map[string]string, b *strings.Builder) int {
	rest := s[i+1:]
	if strings.HasPrefix(rest, "(") {
		return i + 1 + closingParen(rest)
	}
	if strings.HasPrefix(rest, "{") {
		if end := strings.IndexByte(rest, '}'); end > 1 && isShellName(rest[1:end]) {
			b.WriteString(vars[rest[1:end]])
			return i + 1 + end
		}
	}
	n := 0
	for n < len(rest) && isShellName(rest[:n+1]) {
		n++
	}
	if n == 0 {
		b.WriteByte('$')
		return i
	}
	b.WriteString(vars[rest[:n]])
	return i + n
}

// closingParen is the index in s (which starts with "(") of the ")" that
// closes it, or the last index when none does.
func closingParen(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(s) - 1
}
