// Package textdiff prints the difference of two texts as a unified diff, for
// showing what a change would do before it is made. It is meant for
// configuration files: the longest-common-subsequence table it builds grows
// with the product of the line counts.
package textdiff

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

const context = 3

// maxCells bounds the LCS table; larger texts are shown as a whole replacement.
const maxCells = 16 << 20

// sniffLen is how much of a file is searched for a NUL byte, which makes
// it binary, as diff(1) and git decide.
const sniffLen = 8000

// Unified writes the unified diff turning a into b, with headers naming
// them; nothing when they are equal. Binary files (an initramfs) are
// named with their sizes, as diff(1) does, instead of their lines.
func Unified(w io.Writer, nameA, nameB string, a, b []byte) {
	if string(a) == string(b) {
		return
	}
	if binary(a) || binary(b) {
		fmt.Fprintf(w, "Binary files %s and %s differ (%d bytes, now %d)\n", nameA, nameB, len(a), len(b))
		return
	}
	x, y := lines(a), lines(b)
	fmt.Fprintf(w, "--- %s\n+++ %s\n", nameA, nameB)
	ops := script(x, y)
	// Group the edit script into hunks with context lines around changes.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(0, i-context)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run-end > 2*context || run == len(ops) {
				end = min(run, end+context)
				break
			}
			end = run
		}
		h := ops[start:end]
		aStart, bStart, aLen, bLen := h[0].a+1, h[0].b+1, 0, 0
		for _, o := range h {
			if o.kind != '+' {
				aLen++
			}
			if o.kind != '-' {
				bLen++
			}
		}
		fmt.Fprintf(w, "@@ -%d,%d +%d,%d @@\n", aStart, aLen, bStart, bLen)
		for _, o := range h {
			fmt.Fprintf(w, "%c%s\n", o.kind, o.text)
		}
		i = end
	}
}

func binary(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), sniffLen)], 0) >= 0
}

func lines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

type op struct {
	kind rune // ' ', '-', '+'
	text string
	a, b int // line indexes in a and b where the op stands
}

// script computes an edit script with the LCS of x and y.
func script(x, y []string) []op {
	if (len(x)+1)*(len(y)+1) > maxCells {
		var ops []op
		for i, l := range x {
			ops = append(ops, op{'-', l, i, 0})
		}
		for j, l := range y {
			ops = append(ops, op{'+', l, len(x), j})
		}
		return ops
	}
	n, m := len(x), len(y)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			ops = append(ops, op{' ', x[i], i, j})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', x[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', y[j], i, j})
			j++
		}
	}
	return ops
}
