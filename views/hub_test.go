package views

import (
	"fmt"
	"runtime"
	"testing"
)

// heapGrowth returns the live heap now, after a collection, less base.
func heapGrowth(base uint64) int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc) - int64(base)
}

// TestStalledSubscribersPinBoundedMemory: 1,000 watchers that never read
// while changes go by. Each used to own a 4,096-slot channel (160 KiB)
// and to pin up to 4,096 changes; now they share the hub's one window
// (WindowChanges, WindowBytes), whatever their number, and once they
// fall out of it they are dropped and pin nothing.
func TestStalledSubscribersPinBoundedMemory(t *testing.T) {
	h := NewHub(nil)
	base := uint64(heapGrowth(0))
	subs := make([]*Subscription, 1000)
	for i := range subs {
		subs[i] = h.Subscribe("")
	}
	for i := range 3000 {
		h.Publish(fmt.Sprint("c-", i%50), make([]byte, 1<<10))
	}
	stalled := heapGrowth(base)
	t.Logf("1,000 stalled subscribers, 3,000 changes of 1 KiB behind: %d KiB of heap", stalled>>10)
	if stalled > 8<<20 {
		t.Errorf("stalled subscribers pin %d KiB, want at most 8 MiB (3 MiB of changes, once)", stalled>>10)
	}
	for _, s := range subs {
		if s.Dropped() {
			t.Fatal("a subscriber was dropped inside the window")
		}
	}

	for i := range 5000 {
		h.Publish(fmt.Sprint("c-", i%50), make([]byte, 4<<10))
	}
	dropped := heapGrowth(base)
	t.Logf("after 5,000 changes of 4 KiB more: %d KiB of heap", dropped>>10)
	if dropped > 4<<20 {
		t.Errorf("the hub holds %d KiB with no subscriber left, want its window let go", dropped>>10)
	}
	for _, s := range subs {
		if _, open := s.Take(nil); open || !s.Dropped() {
			t.Fatal("a subscriber that fell out of the window was not dropped")
		}
	}
	runtime.KeepAlive(subs)
}

// TestSubscriberOfOneKeyKeepsItsChanges: a subscriber of one customer
// takes its changes in order, and is not dropped for changes of others
// that leave the window; a subscriber of all is.
func TestSubscriberOfOneKeyKeepsItsChanges(t *testing.T) {
	h := NewHub(nil)
	one := h.Subscribe("a")
	defer one.Close()
	all := h.Subscribe("")
	defer all.Close()
	h.Publish("a", []byte("1"))
	first, _ := one.Take(nil)
	for range WindowChanges * 2 {
		h.Publish("b", []byte("x"))
	}
	h.Publish("a", []byte("2"))
	h.Publish("a", []byte("3"))
	got, open := one.Take(first)
	if !open || len(got) != 3 || string(got[0].Value) != "1" || string(got[1].Value) != "2" || string(got[2].Value) != "3" {
		t.Fatalf("one key: open %v, %d changes", open, len(got))
	}
	if _, open := all.Take(nil); open || !all.Dropped() {
		t.Error("the subscriber of every key fell out of the window and was not dropped")
	}
}
