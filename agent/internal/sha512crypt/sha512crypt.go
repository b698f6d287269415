// Package sha512crypt implements SHA-512 crypt ("$6$"), the password hash
// of /etc/shadow, following Ulrich Drepper's published specification
// "Unix crypt using SHA-256 and SHA-512" (the algorithm glibc implements).
package sha512crypt

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

const (
	prefix        = "$6$"
	roundsPrefix  = "rounds="
	maxSaltLen    = 16
	DefaultRounds = 5000
	minRounds     = 1000
	maxRounds     = 999999999
	// alphabet is crypt's base-64 alphabet, also the salt's characters.
	alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// ErrSalt marks a salt setting that is not "$6$[rounds=N$]salt".
var ErrSalt = errors.New("invalid SHA-512 crypt salt")

// Hash hashes password with a fresh random 16-character salt and the
// default rounds, giving a string for /etc/shadow.
func Hash(password string) (string, error) {
	var b [maxSaltLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	salt := make([]byte, maxSaltLen)
	for i, v := range b {
		salt[i] = alphabet[int(v)%len(alphabet)]
	}
	return Crypt(password, prefix+string(salt))
}

// Crypt hashes password with setting, "$6$salt" or "$6$rounds=N$salt" (a
// longer salt is cut to 16 characters, rounds are clamped to the
// specification's range, as glibc does); anything after the salt's "$" is
// ignored, so a stored hash can be given to check a password.
func Crypt(password, setting string) (string, error) {
	rest, ok := strings.CutPrefix(setting, prefix)
	if !ok {
		return "", fmt.Errorf("%w: %q does not start with %s", ErrSalt, setting, prefix)
	}
	rounds, customRounds := DefaultRounds, false
	if r, ok := strings.CutPrefix(rest, roundsPrefix); ok {
		num, after, found := strings.Cut(r, "$")
		n, err := strconv.ParseUint(num, 10, 64)
		if !found || err != nil {
			return "", fmt.Errorf("%w: bad rounds in %q", ErrSalt, setting)
		}
		rounds, customRounds = int(min(max(n, minRounds), maxRounds)), true
		rest = after
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > maxSaltLen {
		salt = salt[:maxSaltLen]
	}
	sum := digest([]byte(password), []byte(salt), rounds)

	var b strings.Builder
	b.WriteString(prefix)
	if customRounds {
		b.WriteString(roundsPrefix + strconv.Itoa(rounds) + "$")
	}
	b.WriteString(salt)
	b.WriteByte('$')
	encode(&b, sum)
	return b.String(), nil
}

// digest is steps 1-21 of the specification.
func digest(p, s []byte, rounds int) []byte {
	h := sha512.New()
	sum := func() []byte { d := h.Sum(nil); h.Reset(); return d }

	// B = SHA512(P S P)
	h.Write(p)
	h.Write(s)
	h.Write(p)
	b := sum()

	// A = SHA512(P S, B repeated to len(P), then per bit of len(P): B or P)
	h.Write(p)
	h.Write(s)
	repeat(h, b, len(p))
	for n := len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(p)
		}
	}
	a := sum()

	// DP = SHA512(P repeated len(P) times); the P sequence is DP to len(P).
	for range len(p) {
		h.Write(p)
	}
	pseq := stretch(sum(), len(p))

	// DS = SHA512(S repeated 16+A[0] times); the S sequence is DS to len(S).
	for range 16 + int(a[0]) {
		h.Write(s)
	}
	sseq := stretch(sum(), len(s))

	c := a
	for i := range rounds {
		if i&1 != 0 {
			h.Write(pseq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sseq)
		}
		if i%7 != 0 {
			h.Write(pseq)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pseq)
		}
		c = sum()
	}
	return c
}

// repeat writes d, whole and then in part, until n bytes are written.
func repeat(h hash.Hash, d []byte, n int) {
	for ; n > len(d); n -= len(d) {
		h.Write(d)
	}
	h.Write(d[:n])
}

// stretch returns d repeated to n bytes.
func stretch(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

// order is the specification's byte permutation for SHA-512: each triple
// becomes four characters, the last byte two.
var order = [21][3]int{
	{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
	{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13},
	{56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41},
}

func encode(b *strings.Builder, d []byte) {
	put := func(w uint32, n int) {
		for range n {
			b.WriteByte(alphabet[w&0x3f])
			w >>= 6
		}
	}
	for _, t := range order {
		put(uint32(d[t[0]])<<16|uint32(d[t[1]])<<8|uint32(d[t[2]]), 4)
	}
	put(uint32(d[63]), 2)
}
