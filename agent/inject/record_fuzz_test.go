package inject

import (
	"strings"
	"testing"
)

// FuzzParseRecord: whatever the record in an image holds, parsing never
// panics and accepts only paths inject itself writes.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"created":["/usr/sbin/vhdprep-agent","/etc/vhdprep-agent.conf"],"dirs":["/var/lib/vhdprep-agent"]}`))
	f.Add([]byte(`{"version":1,"disabled":[{"path":"/etc/systemd/system/multi-user.target.wants/walinuxagent.service","link":"/lib/systemd/system/walinuxagent.service"}],"agents":["WALinuxAgent"]}`))
	f.Add([]byte(`{"version":1,"replaced":[{"path":"/usr/sbin/vhdprep-agent","data":"b2xk","mode":448}]}`))
	f.Add([]byte(`{"version":1,"created":["/etc/passwd"]}`))
	f.Add([]byte(`{"version":1,"dirs":["/etc/../etc"]}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		for _, p := range r.Created {
			if !ownPath(p) {
				t.Fatalf("accepted %q", p)
			}
		}
		for _, s := range append(r.Replaced, r.Disabled...) {
			if strings.Contains(s.Path, "..") || !strings.HasPrefix(s.Path, "/") {
				t.Fatalf("accepted %q", s.Path)
			}
		}
		for _, d := range r.Dirs {
			if d == "/" || strings.Contains(d, "..") || !ownDir(d) {
				t.Fatalf("accepted directory %q", d)
			}
		}
	})
}

func TestParseRecordRefusesForeignPaths(t *testing.T) {
	for _, rec := range []string{
		`{"version":1,"created":["/etc/passwd"]}`,
		`{"version":1,"dirs":["/home"]}`,
		`{"version":1,"dirs":["/"]}`,
		`{"version":1,"disabled":[{"path":"/etc/systemd/system/multi-user.target.wants/sshd.service","link":"/x"}]}`,
		`{"version":1,"replaced":[{"path":"/etc/shadow","data":""}]}`,
		`{"version":2}`,
		`{"version":1,"extra":true}`,
	} {
		if _, err := ParseRecord([]byte(rec)); err == nil {
			t.Errorf("accepted %s", rec)
		}
	}
}
