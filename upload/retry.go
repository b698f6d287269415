package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ResponseError is an error status from the storage service.
type ResponseError struct {
	StatusCode int
	Code       string        // x-ms-error-code, such as ServerBusy
	RetryAfter time.Duration // what the Retry-After header asked for, if anything
}

func (e *ResponseError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if hint := e.hint(); hint != "" {
		s += "; " + hint
	}
	return s
}

func (e *ResponseError) hint() string {
	switch {
	case e.StatusCode == http.StatusForbidden:
		return "check the credentials: the SAS's expiry and permissions (read, create, write), the account key, or the identity's role (Storage Blob Data Contributor)"
	case e.Code == "ContainerNotFound":
		return "create the container first"
	}
	return ""
}

func isContainerNotFound(err error) bool {
	var re *ResponseError
	return errors.As(err, &re) && re.Code == "ContainerNotFound"
}

func isNotFound(err error) bool {
	var re *ResponseError
	return errors.Is(err, ErrNotFound) || errors.As(err, &re) && re.StatusCode == http.StatusNotFound && re.Code != "ContainerNotFound"
}

// transient tells whether a failed try is worth repeating, and whether the
// service said it was too busy (then fewer requests should run at once).
func transient(err error) (retry, throttled bool, after time.Duration) {
	var si *signInError
	if errors.As(err, &si) {
		return false, false, 0 // the credential retried what it could
	}
	var re *ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable: // ServerBusy, account or disk limits
			return true, true, re.RetryAfter
		case http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
			return true, false, re.RetryAfter // OperationTimedOut and InternalError among them
		case http.StatusBadRequest:
			return re.Code == "Md5Mismatch", false, 0 // the body was damaged on the way
		}
		return false, false, 0
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(err, context.Canceled) {
			return false, false, 0
		}
		// A *url.Error is a net.Error whatever went wrong: judge what is
		// inside it. A malformed URL, an unknown scheme or a certificate
		// that does not verify fails the same way every time.
		err = ue.Err
	}
	var ne net.Error
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &dns) && dns.IsNotFound:
		return false, false, 0 // a wrong address, not a passing fault: Azure does not refuse connections
	case errors.Is(err, context.DeadlineExceeded), // the try's own deadline
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.As(err, &ne):
		return true, false, 0
	}
	return false, false, 0
}

// backoff is the delay before try attempt+1: exponential with jitter, and
// never less than what the service asked for.
func (o *Options) backoff(attempt int, after time.Duration) time.Duration {
	d := o.RetryDelay << min(attempt-1, 30)
	if d > o.MaxRetryDelay || d <= 0 {
		d = o.MaxRetryDelay
	}
	d = d/2 + rand.N(d/2+1) // "equal jitter": spread the tries of parallel workers
	return max(d, after)
}

// stats counts requests as they finish; workers update it concurrently.
type stats struct {
	sent, present, zero, cleared atomic.Int64
	requests, retries, throttled atomic.Int64
}

// retry runs fn until it succeeds, fails for good, or o.MaxAttempts tries
// failed. Each try has its own deadline. A limiter, if given, admits tries.
func retry(ctx context.Context, o *Options, st *stats, op string, fn func(context.Context) error) error {
	return retryLimited(ctx, o, st, nil, op, fn)
}

func retryLimited(ctx context.Context, o *Options, st *stats, lim *limiter, op string, fn func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		var gen uint64
		if lim != nil {
			var err error
			if gen, err = lim.acquire(ctx); err != nil {
				return err
			}
		}
		tctx, cancel := context.WithTimeout(ctx, o.TryTimeout)
		err := fn(tctx)
		cancel()
		again, throttled, after := transient(err)
		if lim != nil {
			lim.release(gen, err == nil, throttled)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !again {
			return fmt.Errorf("%s: %w", op, err)
		}
		if attempt >= o.MaxAttempts {
			return fmt.Errorf("%s: giving up after %d tries: %w", op, attempt, err)
		}
		if st != nil {
			st.retries.Add(1)
			if throttled {
				st.throttled.Add(1)
			}
		}
		wait := o.backoff(attempt, after)
		if throttled {
			fewer := ""
			if lim != nil {
				fewer = ", fewer requests at once"
			}
			o.logf("%s: throttled (%v): waiting %s, then try %d of %d%s", op, Redact(err.Error()), wait.Round(time.Millisecond), attempt+1, o.MaxAttempts, fewer)
		} else {
			o.logf("%s: retrying (%v): waiting %s, then try %d of %d", op, Redact(err.Error()), wait.Round(time.Millisecond), attempt+1, o.MaxAttempts)
		}
		if err := o.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// limiter admits at most limit tries at once. The limit halves when the
// service throttles (once per round of requests: the tries that started
// before a cut do not cut again) and grows by one after a round of
// successes, up to max: additive increase, multiplicative decrease, as TCP
// does, for the same reason.
type limiter struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever a slot frees or the limit grows
	limit   int
	max     int
	min     int // the lowest limit reached, for the summary
	active  int
	gen     uint64 // counts cuts
	streak  int    // successes since the last change
}

func newLimiter(n int) *limiter {
	return &limiter{changed: make(chan struct{}), limit: n, max: n, min: n}
}

// acquire waits for a slot; it returns the generation the try runs in.
func (l *limiter) acquire(ctx context.Context) (uint64, error) {
	for {
		l.mu.Lock()
		if l.active < l.limit {
			l.active++
			gen := l.gen
			l.mu.Unlock()
			return gen, nil
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (l *limiter) release(gen uint64, ok, throttled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active--
	switch {
	case throttled && gen == l.gen:
		l.gen++
		l.limit = max(1, l.limit/2)
		l.min = min(l.min, l.limit)
		l.streak = 0
	case ok:
		if l.streak++; l.streak >= l.limit && l.limit < l.max {
			l.limit++
			l.streak = 0
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *limiter) lowest() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.min
}
