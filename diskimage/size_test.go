package diskimage

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"30G": 30 << 30, "30GiB": 30 << 30, "30720M": 30 << 30, "1048576": 1 << 20,
		"1.5G": 3 << 29, "2t": 2 << 40, "512k": 512 << 10,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "-1G", "0", "30X", "1e3", "100000T"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}
