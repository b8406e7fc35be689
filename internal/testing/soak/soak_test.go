package soak

import (
	"math"
	"testing"

	"github.com/eventfold/eventfold/processor"
)

// TestStreamFoldsWhatItGenerates checks the producer's stream without a
// broker: every well-formed record decodes, the malformed ones do not, and
// the reference holds every customer, registered, with the mix of outcomes
// the load is meant to have.
func TestStreamFoldsWhatItGenerates(t *testing.T) {
	s := newStream(7, 50)
	var malformed int
	for range 5000 {
		r, bad, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		_, decodeErr := processor.Decode(string(r.Key), r.Value)
		if bad != (decodeErr != nil) {
			t.Fatalf("record %s: marked malformed %v, decode error %v", r.Value, bad, decodeErr)
		}
		if bad {
			malformed++
		}
	}
	outcomes := map[string]int{}
	for id, c := range s.reference() {
		if !c.Registered() {
			t.Errorf("%s never registered", id)
		}
		for _, d := range c.Decisions {
			outcomes[string(d.Outcome)+" "+d.Reason]++
		}
	}
	if len(s.reference()) != 50 {
		t.Errorf("%d customers in the reference, want 50", len(s.reference()))
	}
	if malformed < 10 || malformed > 100 {
		t.Errorf("%d malformed records of 5000, want about 1%%", malformed)
	}
	if outcomes["rejected "+processor.ReasonVersionConflict] == 0 || outcomes["accepted "] == 0 {
		t.Errorf("outcomes in the recent decisions: %v; want accepted ones and version conflicts", outcomes)
	}
}

func TestLiveHeapSlope(t *testing.T) {
	r := &Report{}
	for i := range 10 {
		r.Samples = append(r.Samples, Sample{Seconds: float64(i * 360), LiveHeapBytes: uint64(100 + 50*i)})
	}
	r.summarize()
	// 50 bytes every 360 s is 500 bytes an hour.
	if math.Abs(r.LiveHeapSlope-500) > 1e-6 {
		t.Errorf("slope %v, want 500 bytes/h", r.LiveHeapSlope)
	}
	if r.Peak.LiveHeapBytes != 550 {
		t.Errorf("peak live heap %d, want 550", r.Peak.LiveHeapBytes)
	}
}

func TestDefaultConfigNeedsOnlyWhereToGo(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err == nil {
		t.Error("a config without a base URL validates")
	}
	cfg.BaseURL, cfg.Brokers, cfg.Topic = "http://127.0.0.1:1", []string{"127.0.0.1:2"}, "events"
	if err := cfg.Validate(); err != nil {
		t.Errorf("default config with a target: %v", err)
	}
}
