package kmod

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The files Depmod writes, in lib/modules/VERSION.
const (
	FileDep        = "modules.dep"
	FileDepBin     = "modules.dep.bin"
	FileAlias      = "modules.alias"
	FileAliasBin   = "modules.alias.bin"
	FileSoftdep    = "modules.softdep"
	FileSymbols    = "modules.symbols"
	FileSymbolsBin = "modules.symbols.bin"
	FileDevname    = "modules.devname"
	FileWeakdep    = "modules.weakdep"
	FileOrder      = "modules.order"
	FileBuiltin    = "modules.builtin"
)

// ErrCycle is returned when modules depend on each other in a circle,
// which no load order satisfies.
var ErrCycle = fmt.Errorf("modules depend on each other in a cycle")

// Depmod computes the index files depmod writes for mods: the text files
// and the binary indexes libkmod reads first (modules.builtin's indexes
// do not depend on mods and are left as they are). order is the content
// of modules.order, whose listing decides each module's priority; modules
// it does not list follow, by path. A dependency no module in mods
// provides is left out, as depmod leaves out a symbol nothing exports.
func Depmod(mods []*Module, order []byte) (map[string][]byte, error) {
	ms := sortModules(mods, order)
	byName := make(map[string]int, len(ms))
	for i, m := range ms {
		byName[m.Name] = i
	}
	deps := make([][]int, len(ms))
	for i, m := range ms {
		for _, d := range m.Depends {
			if j, ok := byName[d]; ok && j != i && !slices.Contains(deps[i], j) {
				deps[i] = append(deps[i], j)
			}
		}
	}
	rank, err := topoRank(deps)
	if err != nil {
		return nil, err
	}

	files := map[string][]byte{}
	var dep, alias, softdep, weakdep, symbols, devname bytes.Buffer
	depBin, aliasBin, symbolsBin := NewIndex(), NewIndex(), NewIndex()
	alias.WriteString("# Aliases extracted from modules themselves.\n")
	softdep.WriteString("# Soft dependencies extracted from modules themselves.\n")
	weakdep.WriteString("# Weak dependencies extracted from modules themselves.\n")
	symbols.WriteString("# Aliases for symbols, used by symbol_request().\n")
	owner := map[string]int{}
	for i, m := range ms {
		line := m.Path + ":"
		for _, d := range allDeps(i, deps, rank) {
			line += " " + ms[d].Path
		}
		dep.WriteString(line + "\n")
		if err := depBin.Insert(m.Name, line, uint32(i)); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, err)
		}
		for _, a := range m.Aliases {
			fmt.Fprintf(&alias, "alias %s %s\n", a, m.Name)
			key, ok := normalizeAlias(a)
			if !ok {
				continue // depmod warns of the unmatched bracket and skips it
			}
			if err := aliasBin.Insert(key, m.Name, uint32(i)); err != nil {
				return nil, fmt.Errorf("%s: %w", m.Path, err)
			}
		}
		for _, s := range m.SoftDeps {
			fmt.Fprintf(&softdep, "softdep %s %s\n", m.Name, s)
		}
		for _, w := range m.WeakDeps {
			fmt.Fprintf(&weakdep, "weakdep %s %s\n", m.Name, w)
		}
		if line, ok := devnameLine(m); ok {
			if devname.Len() == 0 {
				devname.WriteString("# Device nodes to trigger on-demand module loading.\n")
			}
			devname.WriteString(line)
		}
		// A symbol exported twice belongs to the later module, as in
		// depmod's symbol table.
		for _, s := range m.Symbols {
			owner[s] = i
		}
	}
	names := make([]string, 0, len(owner))
	for s := range owner {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		m := ms[owner[s]]
		fmt.Fprintf(&symbols, "alias symbol:%s %s\n", s, m.Name)
		if err := symbolsBin.Insert("symbol:"+s, m.Name, uint32(owner[s])); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, err)
		}
	}

	files[FileDep] = dep.Bytes()
	files[FileAlias] = alias.Bytes()
	files[FileSoftdep] = softdep.Bytes()
	files[FileSymbols] = symbols.Bytes()
	files[FileDevname] = devname.Bytes()
	for name, ix := range map[string]*Index{FileDepBin: depBin, FileAliasBin: aliasBin, FileSymbolsBin: symbolsBin} {
		var b bytes.Buffer
		if _, err := ix.WriteTo(&b); err != nil {
			return nil, err
		}
		files[name] = b.Bytes()
	}
	if hasWeakdeps(ms) {
		files[FileWeakdep] = weakdep.Bytes()
	}
	return files, nil
}

// sortModules orders modules as depmod does: those modules.order lists,
// in its order, then the rest by path.
func sortModules(mods []*Module, order []byte) []*Module {
	pos := map[string]int{}
	for i, line := range strings.Split(string(order), "\n") {
		if _, seen := pos[line]; line != "" && !seen {
			pos[line] = i
		}
	}
	ms := slices.Clone(mods)
	slices.SortStableFunc(ms, func(a, b *Module) int {
		pa, oka := pos[OrderPath(a.Path)]
		pb, okb := pos[OrderPath(b.Path)]
		switch {
		case oka && okb:
			return pa - pb
		case oka != okb:
			if oka {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	return ms
}

// OrderPath is a module file's path as modules.order lists it: ending in
// .ko.
func OrderPath(p string) string {
	for _, s := range Suffixes[1:] {
		if base, ok := strings.CutSuffix(p, s); ok {
			return base + ".ko"
		}
	}
	return p
}

// topoRank numbers modules so that a module comes before every module it
// depends on, by depmod's algorithm: modules no other module uses are
// taken from a stack seeded in module order, and a dependency is pushed
// once its last user is taken.
func topoRank(deps [][]int) ([]int, error) {
	users := make([]int, len(deps))
	for _, ds := range deps {
		for _, d := range ds {
			users[d]++
		}
	}
	var stack []int
	for i, u := range users {
		if u == 0 {
			stack = append(stack, i)
		}
	}
	rank := make([]int, len(deps))
	n := 0
	for len(stack) > 0 {
		m := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		rank[m] = n
		n++
		for _, d := range deps[m] {
			if users[d]--; users[d] == 0 {
				stack = append(stack, d)
			}
		}
	}
	if n < len(deps) {
		return nil, ErrCycle
	}
	return rank, nil
}

// allDeps is every module i needs, directly or not, in rank order: the
// ones loaded last first, as modules.dep lists them.
func allDeps(i int, deps [][]int, rank []int) []int {
	seen := map[int]bool{}
	var all []int
	var visit func(int)
	visit = func(m int) {
		for _, d := range deps[m] {
			if !seen[d] {
				seen[d] = true
				all = append(all, d)
				visit(d)
			}
		}
	}
	visit(i)
	slices.SortFunc(all, func(a, b int) int { return rank[a] - rank[b] })
	return all
}

// normalizeAlias turns dashes into underscores outside bracket
// expressions, as libkmod matches aliases; false for an unmatched bracket.
func normalizeAlias(a string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(a); i++ {
		switch c := a[i]; c {
		case '-':
			b.WriteByte('_')
		case ']':
			return "", false
		case '[':
			end := strings.IndexByte(a[i:], ']')
			if end < 0 {
				return "", false
			}
			b.WriteString(a[i : i+end+1])
			i += end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// devnameLine is a module's modules.devname line: a module that names a
// device node and its major and minor number is loaded when the node is
// opened.
func devnameLine(m *Module) (string, bool) {
	var name string
	var typ byte
	var major, minor uint
	for _, a := range m.Aliases {
		if n, ok := strings.CutPrefix(a, "devname:"); ok {
			name = n
		} else if _, err := fmt.Sscanf(a, "char-major-%d-%d", &major, &minor); err == nil {
			typ = 'c'
		} else if _, err := fmt.Sscanf(a, "block-major-%d-%d", &major, &minor); err == nil {
			typ = 'b'
		}
		if name != "" && typ != 0 {
			break
		}
	}
	if name == "" || typ == 0 {
		return "", false
	}
	return fmt.Sprintf("%s %s %c%d:%d\n", m.Name, name, typ, major, minor), true
}

func hasWeakdeps(ms []*Module) bool {
	for _, m := range ms {
		if len(m.WeakDeps) > 0 {
			return true
		}
	}
	return false
}
