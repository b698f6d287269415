package main

import (
	"os"
	"sync"
)

// logFileWriter appends to a log file and, when a write would take it past
// max bytes, first moves it to <name>.1 (replacing the previous one) and
// starts a new file: a daemon that runs for months keeps at most two.
type logFileWriter struct {
	name string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

func openLogFile(name string, max int64) (*logFileWriter, error) {
	w := &logFileWriter{name: name, max: max}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *logFileWriter) open() error {
	f, err := os.OpenFile(w.name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, fi.Size()
	return nil
}

func (w *logFileWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.size > 0 && w.size+int64(len(p)) > w.max {
		// On failure keep writing to the file as it is: a full log beats none.
		if err := os.Rename(w.name, w.name+".1"); err == nil {
			old := w.f
			if err := w.open(); err == nil {
				old.Close()
			} else {
				w.f = old
			}
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

func (w *logFileWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}
