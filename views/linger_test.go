package views

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/eventfold/eventfold/internal/memstore"
	"github.com/eventfold/eventfold/processor"
)

// TestRevokedPartitionLingersThroughTheRebalance: with standbys on, a
// partition the processor closes (revoked) stays readable, as a copy
// that is not the processor's own, until the processor was seen stopped
// and runs again; without standbys, or once the view has stopped, it is
// closed at once.
func TestRevokedPartitionLingersThroughTheRebalance(t *testing.T) {
	const id = "c-1"
	n := processor.PartitionFor(id, 4)
	open := func(t *testing.T, standby bool, ready *bool) (*local, *localPartition) {
		l := newLocal(4, NewHub(nil), func() bool { return *ready }, slog.Default())
		if standby {
			l.standby, l.lingers = &Standbys{log: slog.Default()}, true
		}
		st, err := l.builder(memstore.Builder())("table", n)
		if err != nil {
			t.Fatal(err)
		}
		p := st.(*localPartition)
		if err := p.Open(); err != nil {
			t.Fatal(err)
		}
		if err := p.Set(id, []byte(`{"id":"c-1","version":1}`)); err != nil {
			t.Fatal(err)
		}
		if err := p.MarkRecovered(); err != nil {
			t.Fatal(err)
		}
		return l, p
	}
	read := func(l *local) (standby bool, err error) {
		_, standby, err = l.partition(id)
		return standby, err
	}

	t.Run("lingers until the processor ran again", func(t *testing.T) {
		ready := true
		l, p := open(t, true, &ready)
		if standby, err := read(l); err != nil || standby {
			t.Fatalf("an owned partition: standby %v, %v; want the processor's own", standby, err)
		}
		p.Close() // revoked; the processor still reads as running
		l.settle(false)
		if standby, err := read(l); err != nil || !standby {
			t.Fatalf("a revoked partition: standby %v, %v; want readable as a copy", standby, err)
		}
		ready = false // the rebalance
		l.settle(false)
		if _, err := read(l); err != nil {
			t.Fatalf("during the rebalance: %v", err)
		}
		ready = true // it moved elsewhere
		l.settle(false)
		if _, err := read(l); !errors.Is(err, ErrNotLocal) {
			t.Fatalf("after the rebalance: %v, want ErrNotLocal", err)
		}
	})
	t.Run("reopened by the processor", func(t *testing.T) {
		ready := false
		l, p := open(t, true, &ready)
		p.Close()
		if _, err := l.builder(memstore.Builder())("table", n); err != nil {
			t.Fatal(err)
		}
		if len(l.lingering) != 0 {
			t.Fatal("the partition still lingers after the processor opened it again")
		}
	})
	t.Run("without standbys", func(t *testing.T) {
		ready := false
		l, p := open(t, false, &ready)
		p.Close()
		if _, err := read(l); !errors.Is(err, ErrNotLocal) {
			t.Fatalf("a revoked partition without standbys: %v, want ErrNotLocal", err)
		}
	})
	t.Run("after the view stopped", func(t *testing.T) {
		ready := false
		l, p := open(t, true, &ready)
		l.settle(true)
		p.Close()
		if _, err := read(l); !errors.Is(err, ErrNotLocal) {
			t.Fatalf("a partition closed after the view stopped: %v, want ErrNotLocal", err)
		}
	})
}
