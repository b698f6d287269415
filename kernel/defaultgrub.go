package kernel

import (
	"strings"
	"unicode/utf8"
)

// The /etc/default/grub variables that make the kernel command line:
// grub-mkconfig puts both on normal entries, only the first on recovery
// entries.
const (
	VarCmdlineLinux   = "GRUB_CMDLINE_LINUX"
	VarCmdlineDefault = "GRUB_CMDLINE_LINUX_DEFAULT"
)

// assignment is a shell variable assignment: the variable, its value,
// the line the statement starts on (1-based), and where its value's word
// lies in the text, as written.
type assignment struct {
	name, value string
	line        int
	start, end  int
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
	next := 0 // where lines[i+1] starts in text
	for i := 0; i < len(lines); i++ {
		start, at := i, next
		stmt := lines[i]
		next += len(lines[i]) + 1
		// Join continued lines: a trailing backslash, or an open quote.
		for i+1 < len(lines) && continues(stmt) {
			i++
			stmt += "\n" + lines[i]
			next += len(lines[i]) + 1
		}
		s := strings.TrimLeft(stmt, " \t")
		s = strings.TrimPrefix(s, "export ")
		s = strings.TrimLeft(s, " \t")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || !isShellName(s[:eq]) {
			continue
		}
		name := s[:eq]
		value, n := shellWord(s[eq+1:], expandFrom(vars))
		vars[name] = value
		word := at + len(stmt) - len(s) + eq + 1
		out = append(out, assignment{name: name, value: value, line: start + 1, start: word, end: word + n})
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

// expansion is a part of a shell word that the shell expands rather
// than takes as written: a variable ($NAME or ${NAME}), a command
// substitution ($(...)), or a $ or ` this parser reads no further
// (unknown, kept as written: ${NAME:-word}, $1, `command`).
type expansion struct {
	name    string // the variable; "" for the others
	raw     string // as written
	unknown bool
}

// expandFrom expands variables from vars. A command substitution writes
// nothing: its output is unknown offline (RHEL 7 puts
// $(rhcrashkernel-param) in GRUB_CMDLINE_LINUX).
func expandFrom(vars map[string]string) func(*strings.Builder, expansion) {
	return func(b *strings.Builder, e expansion) {
		switch {
		case e.unknown:
			b.WriteString(e.raw)
		case e.name != "":
			b.WriteString(vars[e.name])
		}
	}
}

// shellWord reads one shell word (the right side of an assignment) up to
// unquoted white space, with its expansions written by expand, and
// returns its value and its length in s.
func shellWord(s string, expand func(*strings.Builder, expansion)) (string, int) {
	var b strings.Builder
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == ';':
			return b.String(), i
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
			i = doubleQuoted(s, i+1, expand, &b)
		case c == '$':
			i = dollar(s, i, expand, &b)
		case c == '`':
			expand(&b, expansion{raw: "`", unknown: true})
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), min(i, len(s))
}

// doubleQuoted reads a "..." string from s[i] (after the opening quote)
// into b and returns the index of the closing quote.
func doubleQuoted(s string, i int, expand func(*strings.Builder, expansion), b *strings.Builder) int {
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
			i = dollar(s, i, expand, b)
		case c == '`':
			expand(b, expansion{raw: "`", unknown: true})
		default:
			b.WriteByte(c)
		}
	}
	return i
}

// dollar hands expand the expansion $NAME, ${NAME} or $(...) at s[i] and
// returns the index of its last byte; a $ that starts none of them is
// unknown.
func dollar(s string, i int, expand func(*strings.Builder, expansion), b *strings.Builder) int {
	rest := s[i+1:]
	if strings.HasPrefix(rest, "(") {
		end := i + 1 + closingParen(rest)
		expand(b, expansion{raw: s[i : end+1]})
		return end
	}
	if strings.HasPrefix(rest, "{") {
		if end := strings.IndexByte(rest, '}'); end > 1 && isShellName(rest[1:end]) {
			expand(b, expansion{name: rest[1:end], raw: s[i : i+2+end]})
			return i + 1 + end
		}
	}
	n := 0
	for n < len(rest) && isShellName(rest[:n+1]) {
		n++
	}
	if n == 0 {
		expand(b, expansion{raw: "$", unknown: true})
		return i
	}
	expand(b, expansion{name: rest[:n], raw: s[i : i+1+n]})
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

// defaults is what sourcing GRUB's defaults files in order leaves: each
// file's assignments, and for each GRUB_CMDLINE variable its value and
// its last assignment (the last wins, and may build on earlier ones).
type defaults struct {
	files [][]assignment
	vals  map[string]string
	last  map[string]place
}

// place is an assignment's file (its index) and line.
type place struct{ file, line int }

func sourceDefaults(texts []string) defaults {
	d := defaults{vals: map[string]string{}, last: map[string]place{}}
	vars := map[string]string{}
	for i, text := range texts {
		as := parseShellAssignments(text, vars)
		for _, a := range as {
			if a.name == VarCmdlineLinux || a.name == VarCmdlineDefault {
				d.vals[a.name], d.last[a.name] = a.value, place{i, a.line}
			}
		}
		d.files = append(d.files, as)
	}
	return d
}

// cmdline is the command line the defaults give a normal entry: both
// variables.
func (d defaults) cmdline() Cmdline {
	return ParseCmdline(strings.TrimSpace(d.vals[VarCmdlineLinux] + " " + d.vals[VarCmdlineDefault]))
}

// EditDefaultGrub edits GRUB's defaults files, texts in the order
// grub-mkconfig sources them (see DefaultGrubFiles), and returns them in
// that order. The files are read as the shell sources them (see
// parseShellAssignments). Each of remove goes from every assignment to
// either GRUB_CMDLINE variable. Each of add that the two do not already
// give every entry joins GRUB_CMDLINE_LINUX's last assignment where that
// is on one line; where it spans lines, a new assignment after it builds
// on it; where no file assigns the variable, one goes at the end of the
// first file. An assignment is written again only when its value
// changes, expansions as written and in its own quotes where they can
// hold the new value.
func EditDefaultGrub(texts []string, add, remove []string) []string {
	d := sourceDefaults(texts)
	have := d.cmdline()
	var missing []string
	for _, p := range add {
		if have.Add(p).String() != have.String() {
			missing = append(missing, p)
		}
	}
	last, assigned := d.last[VarCmdlineLinux]
	out := make([]string, len(texts))
	for i, text := range texts {
		addAt := 0
		if assigned && last.file == i {
			addAt = last.line
		}
		edited, added := editAssignments(text, d.files[i], addAt, missing, remove)
		var extra string
		switch {
		case len(missing) == 0 || added:
		case addAt > 0:
			extra = VarCmdlineLinux + `="$` + VarCmdlineLinux + " " + quoteDouble(strings.Join(missing, " "), nil) + `"`
		case !assigned && i == 0:
			extra = VarCmdlineLinux + `="` + quoteDouble(strings.Join(missing, " "), nil) + `"`
		}
		if extra != "" {
			if edited != "" && !strings.HasSuffix(edited, "\n") {
				edited += "\n"
			}
			edited += extra + "\n"
		}
		out[i] = edited
	}
	return out
}

// editAssignments edits the GRUB_CMDLINE assignments as, parsed from
// text: remove goes from each, and add joins GRUB_CMDLINE_LINUX's on
// line addAt (0 for none) where its word is on that line. It tells
// whether add was added.
func editAssignments(text string, as []assignment, addAt int, add, remove []string) (string, bool) {
	added := false
	for i := len(as) - 1; i >= 0; i-- { // from the end, so offsets hold
		a := as[i]
		if a.name != VarCmdlineLinux && a.name != VarCmdlineDefault {
			continue
		}
		raw := text[a.start:a.end]
		var adds []string
		if a.name == VarCmdlineLinux && a.line == addAt && len(add) > 0 && !strings.Contains(raw, "\n") {
			adds = add
		}
		word, ok := editWord(raw, adds, remove)
		added = added || ok && adds != nil
		text = text[:a.start] + word + text[a.end:]
	}
	return text, added
}

// Placeholders stand for a word's expansions while its value is edited as
// a command line: runes of Unicode's private use area, which no
// parameter holds.
const (
	firstPlaceholder = '\uE000'
	lastPlaceholder  = '\uF8FF'
)

func isPlaceholder(r rune) bool { return firstPlaceholder <= r && r <= lastPlaceholder }

// placeholders counts the placeholder runes in s.
func placeholders(s string) int {
	n := 0
	for _, r := range s {
		if isPlaceholder(r) {
			n++
		}
	}
	return n
}

// editWord edits the command line that the shell word raw holds (see
// EditParams), each expansion standing as one opaque part of a parameter,
// and writes the word again if its value changed (see quoteWord). A word
// with an expansion this parser does not read (see expansion), or where
// the value or a parameter holds a placeholder rune of its own, is left
// as it is, and the result is false.
func editWord(raw string, add, remove []string) (string, bool) {
	var subst []expansion
	unknown := false
	value, _ := shellWord(raw, func(b *strings.Builder, e expansion) {
		unknown = unknown || e.unknown
		b.WriteRune(firstPlaceholder + rune(len(subst)))
		subst = append(subst, e)
	})
	if unknown || len(subst) > lastPlaceholder-firstPlaceholder+1 || placeholders(value) != len(subst) ||
		placeholders(strings.Join(add, "")+strings.Join(remove, "")) > 0 {
		return raw, false
	}
	edited := EditParams(value, add, remove)
	if edited == value {
		return raw, true
	}
	return quoteWord(edited, subst, raw), true
}

// quoteWord writes value as a shell word, each placeholder as the
// expansion in subst it stands for: in single quotes where the word was
// single-quoted and value can be, bare where it was a plain bare word and
// value needs no quotes, else in double quotes.
func quoteWord(value string, subst []expansion, was string) string {
	switch {
	case len(was) >= 2 && was[0] == '\'' && strings.IndexByte(was[1:], '\'') == len(was)-2 &&
		!strings.ContainsFunc(value, func(r rune) bool { return r == '\'' || isPlaceholder(r) }):
		return "'" + value + "'"
	case was != "" && !strings.ContainsAny(was, "'\"\\`") && !strings.ContainsFunc(value, needsQuotes):
		return writeExpanded(value, subst, false)
	}
	return `"` + quoteDouble(value, subst) + `"`
}

// needsQuotes tells whether r changes a bare shell word's meaning.
func needsQuotes(r rune) bool {
	return !(isPlaceholder(r) || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-.,=/:+@%", r))
}

// quoteDouble writes value for inside double quotes, each placeholder as
// the expansion in subst it stands for.
func quoteDouble(value string, subst []expansion) string {
	return writeExpanded(value, subst, true)
}

// writeExpanded writes value, each placeholder as the expansion in subst
// it stands for (one beyond subst as itself) ($NAME as ${NAME} where a name's letter follows), and
// with escaped set the bytes double quotes take literally only after a
// backslash escaped.
func writeExpanded(value string, subst []expansion, escaped bool) string {
	var b strings.Builder
	for i := 0; i < len(value); {
		r, n := utf8.DecodeRuneInString(value[i:])
		switch {
		case isPlaceholder(r) && int(r-firstPlaceholder) < len(subst):
			e := subst[r-firstPlaceholder]
			raw := e.raw
			if next := value[i+n:]; e.name != "" && !strings.HasPrefix(raw, "${") && next != "" && isShellName("x"+next[:1]) {
				raw = "${" + e.name + "}"
			}
			b.WriteString(raw)
		case escaped && n == 1 && strings.IndexByte("\\\"$`", value[i]) >= 0:
			b.WriteByte('\\')
			b.WriteByte(value[i])
		default:
			b.WriteString(value[i : i+n]) // as it was, valid UTF-8 or not
		}
		i += n
	}
	return b.String()
}
