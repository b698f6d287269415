package guest

import (
	"strings"
	"testing"
)

// FuzzParseOSRelease feeds os-release files as distributions ship them and
// odd ones: every key and value parsed must come from the input.
func FuzzParseOSRelease(f *testing.F) {
	for _, s := range []string{
		"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		"NAME=\"Ubuntu\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n",
		"NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\n",
		"NAME=\"SLES\"\nVERSION=\"15-SP5\"\nID=\"sles\"\nID_LIKE=\"suse\"\nVERSION_ID=\"15.5\"\n",
		"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
		"# comment\n=novalue\nID='quoted'\r\nKEY=a=b\n\"\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for k, v := range parseOSRelease(b) {
			if strings.HasPrefix(k, "#") || !strings.Contains(string(b), k+"=") || !strings.Contains(string(b), v) {
				t.Fatalf("parsed %q=%q not from the input", k, v)
			}
		}
	})
}
