package lint

import (
	"fmt"
	"regexp"
	"strings"
)

// editLine rewrites line n (1-based) of a file in the overlay.
func editLine(o *Overlay, name string, n int, edit func(string) (string, error)) error {
	b, err := o.Read(name)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	if n < 1 || n > len(lines) {
		return fmt.Errorf("/%s has no line %d", name, n)
	}
	nl, err := edit(lines[n-1])
	if err != nil {
		return err
	}
	lines[n-1] = nl
	o.Write(name, []byte(strings.Join(lines, "\n")))
	return nil
}

// disabledBy is a line a repair of rule comments out, saying which.
func disabledBy(rule, line string) string { return "# disabled by vhdprep (" + rule + "): " + line }

// setKey sets key=value in a KEY=VALUE file (waagent.conf,
// vhdprep-agent.conf): the last line setting it, or a new line at the end.
func setKey(o *Overlay, name, key, value string) error {
	b, err := o.Read(name)
	if err != nil {
		return err
	}
	re := regexp.MustCompile(`(?m)^[ \t]*` + regexp.QuoteMeta(key) + `[ \t]*=.*$`)
	locs := re.FindAllIndex(b, -1)
	line := []byte(key + "=" + value)
	if len(locs) == 0 {
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		o.Write(name, append(append(b, line...), '\n'))
		return nil
	}
	last := locs[len(locs)-1]
	o.Write(name, append(append(append([]byte{}, b[:last[0]]...), line...), b[last[1]:]...))
	return nil
}
