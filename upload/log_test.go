package upload

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Logf hears each step, and each retry and throttle with its reason (the
// status and error code) and the wait before the next try.
func TestLogfReportsStepsRetriesAndThrottles(t *testing.T) {
	file := makeVHD(t, testSize, []write{{Offset: 0, Length: 4096}})
	mb := newMemBlob(0)
	mb.exists = false
	mb.fail = func(n int) error {
		switch n {
		case 1:
			return &ResponseError{StatusCode: http.StatusServiceUnavailable, Code: "ServerBusy", RetryAfter: 7 * time.Second}
		case 2:
			return &ResponseError{StatusCode: http.StatusInternalServerError, Code: "InternalError"}
		}
		return nil
	}
	var mu sync.Mutex
	var lines []string
	var s sleeps
	o := Options{File: file, Blob: mb, RetryDelay: time.Millisecond, sleep: s.sleep, Concurrency: 1,
		Logf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, fmt.Sprintf(format, args...))
		}}
	if _, err := Upload(context.Background(), o, nil); err != nil {
		t.Fatal(err)
	}
	log := strings.Join(lines, "\n")
	for _, want := range []string{
		"opened " + file + ": format vhd-fixed",
		"Azure's verdict on " + file + ": valid",
		"created the page blob",
		": throttled (HTTP 503 Service Unavailable (ServerBusy)): waiting 7s, then try 2 of 10, fewer requests at once",
		": retrying (HTTP 500 Internal Server Error (InternalError)): waiting ",
		"sent ",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}
