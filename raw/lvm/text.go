package lvm

import (
	"fmt"
	"strconv"
	"strings"
)

// The text format (LVM2's lib/config): sections `name { ... }` holding
// `key = value`, where a value is a string, a number or a list of them.

// Limits that keep hostile metadata from costing more than its size.
const (
	maxDepth = 16
	maxItems = 1 << 18
)

// section is a parsed `name { ... }`.
type section struct {
	values   map[string]any // string, int64 or []any
	sections map[string]*section
	order    []string // section names in file order
}

type parser struct {
	s     string
	pos   int
	items int
}

func parseText(text []byte) (*section, error) {
	p := &parser{s: string(text)}
	root, err := p.body(0, true)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return root, nil
}

// body parses items up to a closing brace (or the end, at top level).
func (p *parser) body(depth int, top bool) (*section, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("sections nested deeper than %d", maxDepth)
	}
	sec := &section{values: map[string]any{}, sections: map[string]*section{}}
	for {
		p.skipSpace()
		if p.pos >= len(p.s) {
			if top {
				return sec, nil
			}
			return nil, fmt.Errorf("unexpected end inside a section")
		}
		if p.s[p.pos] == '}' {
			if top {
				return nil, fmt.Errorf("unbalanced '}' at byte %d", p.pos)
			}
			p.pos++
			return sec, nil
		}
		if p.items++; p.items > maxItems {
			return nil, fmt.Errorf("more than %d items", maxItems)
		}
		name := p.ident()
		if name == "" {
			return nil, fmt.Errorf("expected a name at byte %d", p.pos)
		}
		p.skipSpace()
		switch {
		case p.eat('{'):
			if sec.sections[name] != nil {
				return nil, fmt.Errorf("section %q appears twice", name)
			}
			child, err := p.body(depth+1, false)
			if err != nil {
				return nil, err
			}
			sec.sections[name] = child
			sec.order = append(sec.order, name)
		case p.eat('='):
			v, err := p.value()
			if err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			sec.values[name] = v
		default:
			return nil, fmt.Errorf("expected '{' or '=' after %q at byte %d", name, p.pos)
		}
	}
}

func (p *parser) value() (any, error) {
	p.skipSpace()
	if !p.eat('[') {
		return p.scalar()
	}
	var list []any
	for {
		p.skipSpace()
		if p.eat(']') {
			return list, nil
		}
		if p.items++; p.items > maxItems {
			return nil, fmt.Errorf("more than %d items", maxItems)
		}
		v, err := p.scalar()
		if err != nil {
			return nil, err
		}
		list = append(list, v)
		p.skipSpace()
		p.eat(',')
	}
}

func (p *parser) scalar() (any, error) {
	p.skipSpace()
	if p.eat('"') {
		var b strings.Builder
		for p.pos < len(p.s) {
			c := p.s[p.pos]
			p.pos++
			switch c {
			case '"':
				return b.String(), nil
			case '\\':
				if p.pos < len(p.s) {
					b.WriteByte(p.s[p.pos])
					p.pos++
				}
			default:
				b.WriteByte(c)
			}
		}
		return nil, fmt.Errorf("unterminated string")
	}
	start := p.pos
	for p.pos < len(p.s) && (p.s[p.pos] == '-' || p.s[p.pos] == '.' || (p.s[p.pos] >= '0' && p.s[p.pos] <= '9')) {
		p.pos++
	}
	n, err := strconv.ParseInt(p.s[start:p.pos], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("bad value at byte %d", start)
	}
	return n, nil
}

func (p *parser) ident() string {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '_' || c == '-' || c == '.' || c == '+' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			p.pos++
			continue
		}
		break
	}
	return p.s[start:p.pos]
}

func (p *parser) eat(c byte) bool {
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// skipSpace skips white space and # comments (and the NULs that pad
// metadata areas).
func (p *parser) skipSpace() {
	for p.pos < len(p.s) {
		switch c := p.s[p.pos]; {
		case c == '#':
			for p.pos < len(p.s) && p.s[p.pos] != '\n' {
				p.pos++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0:
			p.pos++
		default:
			return
		}
	}
}

func (s *section) str(key string) string {
	v, _ := s.values[key].(string)
	return v
}

func (s *section) int(key string) (int64, error) {
	v, ok := s.values[key].(int64)
	if !ok {
		return 0, fmt.Errorf("%w: %q is missing or not a number", ErrCorrupt, key)
	}
	return v, nil
}

func (s *section) strings(key string) []string {
	list, _ := s.values[key].([]any)
	var out []string
	for _, v := range list {
		if str, ok := v.(string); ok {
			out = append(out, str)
		}
	}
	return out
}
