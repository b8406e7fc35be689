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
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
