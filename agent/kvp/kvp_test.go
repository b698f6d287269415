package kvp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func records(t *testing.T, b []byte) [][2]string {
	t.Helper()
	if len(b)%RecordSize != 0 {
		t.Fatalf("%d bytes: not whole records", len(b))
	}
	var out [][2]string
	for i := 0; i < len(b); i += RecordSize {
		k, v, err := Decode(b[i : i+RecordSize])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]string{k, v})
	}
	return out
}

func TestEncodeSplitsAsAzureInit(t *testing.T) {
	long := strings.Repeat("a", ChunkSize) + strings.Repeat("b", ChunkSize) + "c"
	got := records(t, Encode("k", long))
	if len(got) != 3 || got[0][1] != strings.Repeat("a", ChunkSize) || got[1][1] != strings.Repeat("b", ChunkSize) || got[2][1] != "c" {
		t.Fatalf("split into %d records: %q", len(got), got)
	}
	for _, r := range got {
		if r[0] != "k" {
			t.Errorf("key %q", r[0])
		}
	}
	if got := records(t, Encode(strings.Repeat("k", 600), "")); len(got) != 1 || len(got[0][0]) != KeySize || got[0][1] != "" {
		t.Errorf("long key, empty value: %d records, key of %d bytes", len(got), len(got[0][0]))
	}
	if _, _, err := Decode(make([]byte, 10)); err != ErrBadRecord {
		t.Errorf("short record: %v", err)
	}
}

func TestEventsAppendedAndReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var/lib/hyperv/.kvp_pool_1")
	w := &Writer{Path: path, Source: "vhdprep-agent-1.0", VMID: "d0df4c54-4ecb-4a4b-9954-5bdf3ed5c3b8"}
	if err := w.Event("INFO", "provisioning", "started"); err != nil {
		t.Fatal(err)
	}
	if err := w.Event("ERROR", "provisioning", "step user: "+strings.Repeat("x", 2000)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := records(t, b)
	if len(got) != 3 {
		t.Fatalf("%d records, want 1 + 2 (the long failure split)", len(got))
	}
	if got[0][0] != "vhdprep-agent-1.0|d0df4c54-4ecb-4a4b-9954-5bdf3ed5c3b8|INFO|provisioning|1" || !strings.HasSuffix(got[0][1], " started") {
		t.Errorf("first %q", got[0])
	}
	if got[1][0] != got[2][0] || !strings.HasSuffix(got[1][0], "|ERROR|provisioning|2") || !strings.Contains(got[1][1], "step user: xxx") {
		t.Errorf("failure %q / %q", got[1][0], got[2][0])
	}
}

func TestTruncateStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".kvp_pool_1")
	if err := TruncateStale(path, time.Now()); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	os.WriteFile(path, Encode("k", "v"), 0o644)
	if err := TruncateStale(path, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Size() != RecordSize {
		t.Errorf("written since boot, yet truncated to %d", fi.Size())
	}
	if err := TruncateStale(path, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("stale file kept %d bytes", fi.Size())
	}
}
