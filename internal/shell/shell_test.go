package shell

import (
	"os/exec"
	"testing"
)

// sh is the oracle: each quoted word reads back as the original.
func TestQuoteReadsBackInSh(t *testing.T) {
	for _, s := range []string{"disk.vhd", "/tmp/a b.raw", "it's", "", "$(reboot)", "a\"b", "x;y", "--root=/mnt"} {
		out, err := exec.Command("sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("sh read %s as %q (%v), want %q", Quote(s), out, err, s)
		}
	}
	if Quote("disk.vhd") != "disk.vhd" {
		t.Errorf("a safe word was quoted: %s", Quote("disk.vhd"))
	}
}
