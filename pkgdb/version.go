package pkgdb

import "strings"

// Compare orders two package versions as dpkg does (Debian Policy 5.6.12):
// the epoch before ':' numerically, then the upstream version, then the
// revision after the last '-', each compared in alternating runs of
// non-digits (letters before other characters, '~' before everything,
// even the end) and digits (numerically). It returns -1, 0 or +1. apk,
// pacman and rpm versions compare sensibly by the same rules.
func Compare(a, b string) int {
	ea, ua, ra := split(a)
	eb, ub, rb := split(b)
	if c := compareNumbers(ea, eb); c != 0 {
		return c
	}
	if c := compareFragments(ua, ub); c != 0 {
		return c
	}
	return compareFragments(ra, rb)
}

// Upstream is a version without its epoch and revision: what the
// software's authors call it (1:1.1.1k-9.el8 is 1.1.1k).
func Upstream(v string) string {
	_, u, _ := split(v)
	return u
}

// split cuts a version into epoch, upstream version and revision. An
// epoch that is not a number is part of the upstream version.
func split(v string) (epoch, upstream, revision string) {
	if e, rest, ok := strings.Cut(v, ":"); ok && e != "" && isDigits(e) {
		epoch, v = e, rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// order is a character's weight in a non-digit run; 0 is the end of the
// string (or a digit, where the run ends).
func order(c byte, end bool) int {
	switch {
	case end || isDigit(c):
		return 0
	case isLetter(c):
		return int(c)
	case c == '~':
		return -1
	}
	return int(c) + 256
}

// compareFragments is dpkg's verrevcmp.
func compareFragments(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isDigit(a[i]) || j < len(b) && !isDigit(b[j]) {
			var ca, cb byte
			if i < len(a) {
				ca = a[i]
			}
			if j < len(b) {
				cb = b[j]
			}
			oa, ob := order(ca, i >= len(a)), order(cb, j >= len(b))
			if oa != ob {
				return sign(oa - ob)
			}
			i, j = i+1, j+1
		}
		si, sj := i, j
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if c := compareNumbers(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}

// compareNumbers compares runs of digits of any length numerically (an
// empty run is 0).
func compareNumbers(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
