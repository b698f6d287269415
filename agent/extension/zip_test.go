package extension

import (
	"io/fs"
	"testing"

	"github.com/vhdprep/vhdprep/agent/extension/extensiontest"
)

type zipEntry struct {
	name, body string
	mode       fs.FileMode
}

func buildZip(t testing.TB, entries ...zipEntry) []byte {
	var es []extensiontest.Entry
	for _, e := range entries {
		es = append(es, extensiontest.Entry{Name: e.name, Body: e.body, Mode: e.mode})
	}
	return extensiontest.Zip(t, es...)
}
