package processor

import (
	"fmt"
	"testing"
	"time"
)

func benchEvents(n int) ([]string, [][]byte) {
	keys := make([]string, n)
	values := make([][]byte, n)
	for i := range n {
		keys[i] = fmt.Sprintf("cust-%06d", i%1000)
		if i < 1000 {
			values[i] = fmt.Appendf(nil, `{"specversion":"1.0","id":"e-%d","source":"/bench","type":"customer.registered","time":"2026-01-01T00:00:00Z","subject":%q,"data":{"name":"Customer %d","email":"c%d@example.com","address":{"line1":"1 Main St","city":"Springfield","postal_code":"12345","country":"US"}}}`, i, keys[i], i, i)
		} else {
			values[i] = fmt.Appendf(nil, `{"specversion":"1.0","id":"e-%d","source":"/bench","type":"customer.renamed","time":"2026-01-01T00:00:00Z","subject":%q,"data":{"name":"Name %d"}}`, i, keys[i], i)
		}
	}
	return keys, values
}

func BenchmarkDecode(b *testing.B) {
	keys, values := benchEvents(2000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		j := i % len(values)
		if _, err := Decode(keys[j], values[j]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFoldRecord measures what the processor does per record: decode
// the event, decode the stored state, apply, encode the new state.
func BenchmarkFoldRecord(b *testing.B) {
	keys, values := benchEvents(20000)
	states := map[string][]byte{}
	codec := CustomerCodec{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		j := i % len(values)
		ev, err := Decode(keys[j], values[j])
		if err != nil {
			b.Fatal(err)
		}
		ev.Offset = int64(i)
		ev.Time = time.Unix(0, 0)
		var state Customer
		if raw := states[keys[j]]; raw != nil {
			c, err := DecodeCustomer(raw)
			if err != nil {
				b.Fatal(err)
			}
			state = *c
		}
		next, _ := Apply(state, ev)
		raw, err := codec.Encode(&next)
		if err != nil {
			b.Fatal(err)
		}
		states[keys[j]] = raw
	}
}

func BenchmarkApply(b *testing.B) {
	keys, values := benchEvents(1001)
	reg, _ := Decode(keys[0], values[0])
	state, _ := Apply(Customer{}, reg)
	ren, err := Decode(keys[1000], values[1000])
	if err != nil || ren.Type != TypeRenamed || keys[1000] != keys[0] {
		b.Fatalf("bench data: %v %s", err, ren.Type)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ren.Offset = int64(i + 10)
		ren.ID = "x"
		_, d := Apply(state, ren)
		if d.Outcome != Accepted {
			b.Fatal(d)
		}
	}
}

// benchState is a customer after 40 events, with a full ring of recent
// decisions including a few rejections.
func benchState(b *testing.B) Customer {
	b.Helper()
	keys, values := benchEvents(40000)
	var state Customer
	for i := 0; i < 40000; i += 1000 { // every event of cust-000000
		ev, err := Decode(keys[i], values[i])
		if err != nil {
			b.Fatal(err)
		}
		ev.Offset = int64(i)
		if i%5000 == 0 && i > 0 {
			v := int64(1)
			ev.ExpectedVersion = &v // a conflict
		}
		state, _ = Apply(state, ev)
	}
	if state.Version < 30 || len(state.Decisions) != RecentDecisions {
		b.Fatalf("bench state at version %d with %d decisions", state.Version, len(state.Decisions))
	}
	return state
}

func BenchmarkCustomerCodec(b *testing.B) {
	state := benchState(b)
	codec := CustomerCodec{}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.Encode(&state); err != nil {
				b.Fatal(err)
			}
		}
	})
	raw, _ := codec.Encode(&state)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.Decode(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLookupBody compares the ways to make a lookup's body from a
// stored state: decoding and encoding it again, as lookups did, and
// PublicJSON, which copies the stored bytes and expands the stored
// decisions; "PublicJSON-earlier-layout" is PublicJSON of a value written
// before the decisions were stored compact, a copy alone.
func BenchmarkLookupBody(b *testing.B) {
	state := benchState(b)
	raw := state.AppendStored(nil)
	b.Run("decode-encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := DecodeCustomer(raw)
			if err != nil {
				b.Fatal(err)
			}
			c.History = History{}
			_ = c.AppendJSON(make([]byte, 0, 1024))
		}
	})
	for name, raw := range map[string][]byte{"PublicJSON": raw, "PublicJSON-earlier-layout": state.AppendJSON(nil)} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := PublicJSON(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
