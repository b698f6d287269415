package extension

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdprep/vhdprep/agent/internal/fixtures"
)

// TestStatusFixtures reads WALinuxAgent's sample status files as its
// collect_ext_status does.
func TestStatusFixtures(t *testing.T) {
	dir := fixtures.Require(t)
	read := func(name string) ExtensionStatus {
		return readStatus(filepath.Join(dir, "ext", name), "Ext", "Enable")
	}
	st := read("sample-status.json")
	if st.Status != StatusSuccess || st.Code != 1 || st.Operation != "Enable" || st.Name != "Microsoft.Azure.Extension.VMExtension" ||
		len(st.SubStatus) != 1 || st.SubStatus[0].Status != StatusSuccess || st.SubStatus[0].Code != 0 ||
		st.FormattedMessage == nil || !strings.HasPrefix(st.FormattedMessage.Message, "Aenean semper") {
		t.Errorf("sample-status.json: %+v", st)
	}
	for _, name := range []string{"sample-status-invalid-json-format.json", "sample-status-invalid-format-emptykey-line7.json", "sample-status-invalid-status-no-status-status-key.json"} {
		if st := read(name); st.Status != StatusError || st.Code != codeStatusFileError {
			t.Errorf("%s: %s/%d, want error/%d", name, st.Status, st.Code, codeStatusFileError)
		}
	}
	for _, name := range []string{"sample-status-very-large.json", "sample-status-very-large-multiple-substatuses.json"} {
		st := read(name)
		if st.Status != StatusSuccess {
			t.Errorf("%s: status %s, want success with truncated fields", name, st.Status)
		}
		size := len(st.FormattedMessage.Message)
		if size > maxStatusMessage {
			t.Errorf("%s: message %d bytes, want at most %d", name, size, maxStatusMessage)
		}
		for _, s := range st.SubStatus {
			size += len(s.Name)
			if s.FormattedMessage != nil {
				size += len(s.FormattedMessage.Message)
			}
		}
		if size > MaxStatusFileSize {
			t.Errorf("%s: %d bytes of text kept, want at most %d", name, size, MaxStatusFileSize)
		}
	}
}

func TestReadStatusEdges(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "0.status")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	if st := readStatus(filepath.Join(dir, "missing.status"), "Ext", "Enable"); st.Status != StatusTransitioning {
		t.Errorf("missing file: %s, want transitioning", st.Status)
	}
	if st := readStatus(write(`[{"status":{"status":"bogus","code":"7"}}]`), "Ext", "Enable"); st.Status != StatusError || st.Code != 7 || st.Name != "Ext" {
		t.Errorf("unknown status value: %+v, want error with its code", st)
	}
	if st := readStatus(write(`[]`), "Ext", "Enable"); st.Status != StatusTransitioning {
		t.Errorf("empty list: %s", st.Status)
	}
	if st := readStatus(write(`[{"status":{"status":"success","formattedMessage":{"message":"m"}}}]`), "Ext", "Enable"); st.Code != codeStatusFileError {
		t.Errorf("formattedMessage without lang: %+v", st)
	}
	if st := readStatus(write(strings.Repeat(" ", maxStatusFileRead+1)), "Ext", "Enable"); st.Status != StatusError || !strings.Contains(st.FormattedMessage.Message, "more than") {
		t.Errorf("unbounded file: %+v", st)
	}
}

func FuzzParseStatus(f *testing.F) {
	if dir := fixtures.Dir(); dir != "" {
		for _, n := range []string{"sample-status.json", "sample-status-invalid-json-format.json", "sample-status-invalid-status-no-status-status-key.json"} {
			f.Add(fixtures.Read(f, dir, filepath.Join("ext", n)))
		}
	}
	f.Add([]byte(`[{"status":{"status":"success","code":"1","substatus":[null,{"status":"error","name":{"a":1}}]}}]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		st, ok, err := ParseStatus(doc)
		if err != nil && !errors.Is(err, errMalformed) {
			t.Fatalf("error not marked malformed: %v", err)
		}
		if ok && !validStatus(st.Status) {
			t.Fatalf("status %q passed through", st.Status)
		}
	})
}
