package restart

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLoopRunsAgainAfterAFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs, failures := 0, 0
	err := Loop(ctx, time.Millisecond, func(ctx context.Context) error {
		runs++
		if runs == 3 {
			cancel()
			<-ctx.Done()
			return ctx.Err() // a part returns its context's error on cancel
		}
		return errors.New("broker gone")
	}, func(err error) {
		failures++
		if err == nil || err.Error() != "broker gone" {
			t.Errorf("failed(%v), want the run's error", err)
		}
	})
	if err != nil || runs != 3 || failures != 2 {
		t.Fatalf("Loop = %v after %d runs and %d failures; want nil, 3, 2", err, runs, failures)
	}
}

func TestLoopEndsDuringTheBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Loop(ctx, time.Hour, func(context.Context) error { return errors.New("down") }, func(error) { cancel() })
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Loop = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Loop waited out its backoff after the cancel")
	}
}
