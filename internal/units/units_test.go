package units

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0:               "0 bytes",
		1023:            "1023 bytes",
		1 << 10:         "1 KiB",
		3 << 29:         "1.50 GiB",
		4 << 30:         "4 GiB",
		100<<20 + 1<<19: "100.50 MiB",
		2 << 40:         "2 TiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
