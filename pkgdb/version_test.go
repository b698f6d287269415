package pkgdb

import "testing"

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.0.2", "1.0.2", 0},
		{"1.0.2g-1ubuntu4.20", "1.0.2", 1},
		{"1.0.1t-1+deb8u12", "1.0.2", -1},
		{"1.0.2k", "1.0.2", 1}, // letters sort after the end
		{"3.11.2", "3.9", 1},   // numerically, not as text
		{"3.9", "3.9.0", -1},
		{"1.0~rc1", "1.0", -1}, // ~ before even the end
		{"1.0~rc1", "1.0~rc1~1", 1},
		{"1:0.9", "2.0", 1}, // the epoch first
		{"0:2.0", "2.0", 0},
		{"2.0-1", "2.0-2", -1},
		{"2.0-10", "2.0-9", 1},
		{"1.0a", "1.0+", -1}, // letters before other characters
		{"007", "7", 0},
		{"99999999999999999999999", "99999999999999999999998", 1}, // no overflow
		{"x:1.0", "1.0", 1}, // an epoch that is no number is upstream text
		{"3.0.11-1~deb12u2", "3.0.11-1", -1},
		{"", "0", 0},
	} {
		if got := Compare(c.a, c.b); got != c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Compare(c.b, c.a); got != -c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestUpstream(t *testing.T) {
	for v, want := range map[string]string{
		"1:1.1.1k-9.el8":     "1.1.1k",
		"3.0.11-1~deb12u2":   "3.0.11",
		"3.1.4-r5":           "3.1.4",
		"3.11.5":             "3.11.5",
		"2:3.6.8-51.el8_9.1": "3.6.8",
	} {
		if got := Upstream(v); got != want {
			t.Errorf("Upstream(%q) = %q, want %q", v, got, want)
		}
	}
}

// FuzzCompare: any two versions compare without panicking, antisymmetric
// and reflexive.
func FuzzCompare(f *testing.F) {
	f.Add("1:1.1.1k-9.el8", "1.0.2")
	f.Add("1.0~rc1~1", "1.0~rc1")
	f.Add("007-", "7:")
	f.Fuzz(func(t *testing.T, a, b string) {
		if Compare(a, a) != 0 {
			t.Fatalf("Compare(%q, itself) != 0", a)
		}
		if x, y := Compare(a, b), Compare(b, a); x != -y || x < -1 || x > 1 {
			t.Fatalf("Compare(%q, %q) = %d but reversed %d", a, b, x, y)
		}
	})
}
