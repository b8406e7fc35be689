// Package restart runs a long-lived part of the service, such as the goka
// processor or view, again after it fails, until its context ends.
package restart

import (
	"context"
	"time"
)

// Loop calls run until ctx is cancelled. When run returns while ctx is
// still live, Loop reports run's error to failed and calls run again after
// backoff. It returns nil once ctx is cancelled, also during a backoff.
func Loop(ctx context.Context, backoff time.Duration, run func(context.Context) error, failed func(error)) error {
	for {
		err := run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		failed(err)
		if !Sleep(ctx, backoff) {
			return nil
		}
	}
}

// Sleep waits for d, or less when ctx ends first, and reports whether the
// whole wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
