// Package shell writes the commands vhdprep suggests so that they can be
// pasted into a POSIX shell as they are.
package shell

import "strings"

// safe are the characters sh takes literally in a word.
const safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_"

// Quote makes s one word for sh: as it is when every character is safe,
// else in single quotes.
func Quote(s string) string {
	if s != "" && strings.Trim(s, safe) == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
