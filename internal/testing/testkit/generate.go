package testkit

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"time"
)

// Generate returns a deterministic stream of n valid events over the given
// number of customers, interleaved across customers: each customer is
// registered first, then renamed, moved, suspended and reactivated at
// random. Some events carry a stale expectedversion and are rejected by
// the fold; none is malformed. Ids are "gen-<seed>-<n>".
func Generate(seed int64, customers, n int) []Line {
	rng := rand.New(rand.NewSource(seed))
	type cust struct {
		id         string
		registered bool
		suspended  bool
		version    int64
	}
	cs := make([]cust, customers)
	for i := range cs {
		cs[i].id = fmt.Sprintf("g%d-%06d", seed, i)
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	countries := []string{"DE", "FR", "GB", "US", "NL", "SE", "JP", "BR"}
	out := make([]Line, 0, n)
	next := 0 // customers are registered in order, then picked at random
	for i := 0; i < n; i++ {
		var c *cust
		if next < customers && (rng.Intn(4) == 0 || next == 0) {
			c = &cs[next]
			next++
		} else {
			c = &cs[rng.Intn(max(next, 1))]
		}
		ev := map[string]any{
			"specversion": "1.0",
			"id":          fmt.Sprintf("gen-%d-%d", seed, i),
			"source":      "/eventfold/testkit",
			"subject":     c.id,
			"time":        start.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
		}
		accepted := true
		switch {
		case !c.registered:
			ev["type"] = "customer.registered"
			ev["data"] = map[string]any{"name": fmt.Sprintf("Customer %d", i), "email": fmt.Sprintf("c%d@example.com", i)}
		case rng.Intn(10) == 0:
			// A writer with a stale version: rejected as a conflict.
			ev["type"] = "customer.renamed"
			ev["expectedversion"] = c.version + 1 + int64(rng.Intn(3))
			ev["data"] = map[string]any{"name": "Stale"}
			accepted = false
		default:
			switch r := rng.Intn(10); {
			case r < 3:
				ev["type"] = "customer.renamed"
				ev["data"] = map[string]any{"name": fmt.Sprintf("Name %d", i)}
				ev["expectedversion"] = c.version
			case r < 6:
				ev["type"] = "customer.email_changed"
				ev["data"] = map[string]any{"email": fmt.Sprintf("e%d@example.org", i)}
			case r < 8:
				ev["type"] = "customer.address_changed"
				ev["data"] = map[string]any{"address": map[string]any{
					"line1": fmt.Sprintf("%d Main St", i), "city": "Springfield", "postal_code": fmt.Sprintf("%05d", i%100000),
					"country": countries[rng.Intn(len(countries))]}}
			case !c.suspended:
				ev["type"] = "customer.suspended"
				ev["data"] = map[string]any{"reason": "billing"}
			default:
				ev["type"] = "customer.reactivated"
				ev["data"] = map[string]any{}
			}
		}
		if accepted {
			c.version++
			switch ev["type"] {
			case "customer.registered":
				c.registered = true
			case "customer.suspended":
				c.suspended = true
			case "customer.reactivated":
				c.suspended = false
			}
		}
		value, err := json.Marshal(ev)
		if err != nil {
			panic(fmt.Sprintf("testkit: cannot encode a generated event: %v", err)) // maps of strings always encode
		}
		out = append(out, Line{Key: c.id, Value: value})
	}
	return out
}
