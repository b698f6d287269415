// Package kvp writes diagnostics to Hyper-V's key-value pair exchange, the
// guest pool /var/lib/hyperv/.kvp_pool_1 that hv_kvp_daemon hands to the
// host, in the record format azure-init documents (doc/kvp.md): so a VM
// whose network never comes up can still be diagnosed from the host.
package kvp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// PoolFile is the guest-to-host pool (KVP_POOL_GUEST).
const PoolFile = "/var/lib/hyperv/.kvp_pool_1"

// A record is a NUL-padded key of KeySize bytes and a NUL-padded value of
// ValueSize bytes (struct hv_kvp_exchg_msg_value's fields). Azure reads at
// most ChunkSize bytes of a value, so a longer one is split over records
// of the same key, as azure-init splits it.
const (
	KeySize    = 512
	ValueSize  = 2048
	RecordSize = KeySize + ValueSize
	ChunkSize  = 1022
)

// ErrBadRecord is a record of the wrong size.
var ErrBadRecord = errors.New("kvp: a record is 2560 bytes")

// Encode returns the records of key and value: the key cut at KeySize, the
// value in chunks of ChunkSize, one record each (one for an empty value).
func Encode(key, value string) []byte {
	k := []byte(key)[:min(len(key), KeySize)]
	var out []byte
	v := []byte(value)
	for {
		chunk := v[:min(len(v), ChunkSize)]
		rec := make([]byte, RecordSize)
		copy(rec, k)
		copy(rec[KeySize:], chunk)
		out = append(out, rec...)
		v = v[len(chunk):]
		if len(v) == 0 {
			return out
		}
	}
}

// Decode returns a record's key and value without their padding.
func Decode(rec []byte) (key, value string, err error) {
	if len(rec) != RecordSize {
		return "", "", ErrBadRecord
	}
	return string(bytes.TrimRight(rec[:KeySize], "\x00")), string(bytes.TrimRight(rec[KeySize:], "\x00")), nil
}

// Writer appends events to the pool file. Keys are azure-init's shape:
// <Source>|<VMID>|<level>|<name>|<sequence>.
type Writer struct {
	Path   string // PoolFile except in tests
	Source string // "vhdprep-agent-<version>"
	VMID   string
	seq    int
}

// Event appends one event under an exclusive lock, which hv_kvp_daemon
// and other writers (cloud-init, azure-init) take too.
func (w *Writer) Event(level, name, msg string) error {
	w.seq++
	key := fmt.Sprintf("%s|%s|%s|%s|%d", w.Source, w.VMID, level, name, w.seq)
	value := time.Now().UTC().Format(time.RFC3339Nano) + " " + msg
	if err := os.MkdirAll(filepath.Dir(w.Path), 0o755); err != nil {
		return fmt.Errorf("kvp: %w", err)
	}
	f, err := os.OpenFile(w.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("kvp: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("kvp: locking %s: %w", w.Path, err)
	}
	if _, err := f.Write(Encode(key, value)); err != nil {
		return fmt.Errorf("kvp: %w", err)
	}
	return nil
}

// TruncateStale empties the pool file when it was last written before
// boot, as azure-init does: the records of an earlier boot (or of the
// image's build) would mislead the host.
func TruncateStale(path string, boot time.Time) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kvp: %w", err)
	}
	if fi.ModTime().Before(boot) {
		if err := os.Truncate(path, 0); err != nil {
			return fmt.Errorf("kvp: %w", err)
		}
	}
	return nil
}
