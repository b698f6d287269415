// Package pause waits for a while unless a context ends first: the sleep
// between retries and polls that a cancelled command must not sit out.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx is done, and then returns ctx's error.
func For(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
