package sha512crypt

import (
	"os/exec"
	"strings"
	"testing"
)

// Vectors from the specification ("Unix crypt using SHA-256 and SHA-512",
// test vectors for SHA-512), which OpenSSL and glibc also produce.
var vectors = []struct{ setting, password, want string }{
	{"$6$saltstring", "Hello world!",
		"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"$6$rounds=10000$saltstringsaltstring", "Hello world!",
		"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"$6$rounds=5000$toolongsaltstring", "This is just a test",
		"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	{"$6$rounds=1400$anotherlongsaltstring", "a very much longer text to encrypt.  This one even stretches over morethan one line.",
		"$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
	{"$6$rounds=77777$short", "we have a short salt string but not a short password",
		"$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
	{"$6$rounds=123456$asaltof16chars..", "a short string",
		"$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
	{"$6$rounds=10$roundstoolow", "the minimum number is still observed",
		"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		got, err := Crypt(v.password, v.setting)
		if err != nil || got != v.want {
			t.Errorf("Crypt(%q, %q) = %q, %v\nwant %q", v.password, v.setting, got, err, v.want)
		}
		// A stored hash given as the setting reproduces itself.
		if again, _ := Crypt(v.password, v.want); again != v.want {
			t.Errorf("Crypt with the stored hash = %q", again)
		}
	}
}

func TestHash(t *testing.T) {
	h, err := Hash("pässwörd with spaces")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	if len(parts) != 4 || parts[1] != "6" || len(parts[2]) != 16 || len(parts[3]) != 86 {
		t.Fatalf("Hash = %q, want $6$<16 salt>$<86 chars>", h)
	}
	if h2, _ := Hash("pässwörd with spaces"); h2 == h {
		t.Error("two hashes share a salt")
	}
	if again, _ := Crypt("pässwörd with spaces", h); again != h {
		t.Error("the hash does not verify its password")
	}
	// OpenSSL, an independent implementation, agrees.
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	out, err := exec.Command("openssl", "passwd", "-6", "-salt", parts[2], "pässwörd with spaces").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(out)) != h {
		t.Errorf("openssl: %s, ours: %s", out, h)
	}
}

func TestBadSetting(t *testing.T) {
	for _, s := range []string{"", "$5$salt", "$6$rounds=x$salt", "$6$rounds=10"} {
		if _, err := Crypt("p", s); err == nil {
			t.Errorf("Crypt accepted setting %q", s)
		}
	}
}
