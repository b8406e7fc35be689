package bench

import (
	"context"
	"fmt"
	"math/rand"
	"time"

	"golang.org/x/sync/errgroup"
)

// Events is a deterministic, realistic stream of customer events, held in
// one arena so that a million of them cost few allocations.
//
// The mix follows testkit.Generate, which tests cannot share with a
// command: registrations spread evenly over the stream, so that every
// customer is registered by the end; the other events go to registered
// customers at random: renames with the current expectedversion,
// email and address changes, suspensions and reactivations, 10% renames
// with a stale expectedversion (rejected as version_conflict), 1% re-sent
// events (duplicates) and 0.1% malformed ones (dead letters).
type Events struct {
	// Customers are the customer ids; all of them are registered.
	Customers []string
	customer  []int32 // per event, an index into Customers
	ends      []int   // per event, the end of its value in arena
	arena     []byte
}

// Len returns the number of events.
func (e *Events) Len() int { return len(e.ends) }

// At returns the key and value of event i. The value aliases the arena.
func (e *Events) At(i int) (key string, value []byte) {
	start := 0
	if i > 0 {
		start = e.ends[i-1]
	}
	return e.Customers[e.customer[i]], e.arena[start:e.ends[i]:e.ends[i]]
}

// Bytes returns the total size of the values.
func (e *Events) Bytes() int { return len(e.arena) }

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus", "Radia", "Tim", "Łukasz", "Søren", "Zoë"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Wirth", "Perlman", "Berners-Lee", "Müller", "García"}
	cities     = []struct{ city, country string }{{"Berlin", "DE"}, {"Paris", "FR"}, {"London", "GB"}, {"Cambridge", "US"}, {"Amsterdam", "NL"}, {"Stockholm", "SE"}, {"Tokyo", "JP"}, {"São Paulo", "BR"}}
	streets    = []string{"Main St", "Massachusetts Ave", "Rue de Rivoli", "Unter den Linden", "Kungsgatan", "Prinsengracht"}
)

// GenerateEvents returns n events over the given customers, n >= customers.
func GenerateEvents(seed int64, customers, n int) *Events {
	rng := rand.New(rand.NewSource(seed))
	e := &Events{
		Customers: make([]string, customers),
		customer:  make([]int32, 0, n),
		ends:      make([]int, 0, n),
		arena:     make([]byte, 0, n*330),
	}
	for i := range e.Customers {
		e.Customers[i] = fmt.Sprintf("cust-%07d", i)
	}
	version := make([]int32, customers)
	suspended := make([]bool, customers)
	last := make([]int32, customers) // the last well-formed event of each, to re-send
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	next := 0
	for i := range n {
		at := start.Add(time.Duration(i) * 100 * time.Millisecond).Format(time.RFC3339)
		id := fmt.Sprintf("evt-%d-%08d", seed, i)
		var c int
		// Register the next customer when its turn in the even spread has
		// come, so that all are registered by the last event.
		if next < customers && (next == 0 || int64(i)*int64(customers) >= int64(next)*int64(n)) {
			c, next = next, next+1
			key := e.Customers[c]
			first, lastName := firstNames[rng.Intn(len(firstNames))], lastNames[rng.Intn(len(lastNames))]
			place := cities[rng.Intn(len(cities))]
			e.arena = fmt.Appendf(e.arena, `{"specversion":"1.0","id":%q,"source":"/crm/signup","type":"customer.registered","time":%q,"subject":%q,"datacontenttype":"application/json","data":{"name":"%s %s","email":"customer%d@example.com","address":{"line1":"%d %s","city":%q,"postal_code":"%05d","country":%q}}}`,
				id, at, key, first, lastName, c, 1+rng.Intn(300), streets[rng.Intn(len(streets))], place.city, rng.Intn(100000), place.country)
			version[c] = 1
			e.add(c, &last)
			continue
		}
		c = rng.Intn(next)
		key := e.Customers[c]
		switch r := rng.Intn(1000); {
		case r < 10 && i > 0:
			// A producer retry: the customer's last event again.
			_, v := e.At(int(last[c]))
			e.arena = append(e.arena, v...)
			e.customer = append(e.customer, int32(c))
			e.ends = append(e.ends, len(e.arena))
			continue
		case r < 11:
			e.arena = fmt.Appendf(e.arena, `{"specversion":"1.0","id":%q,"source":"/legacy/import","type":"customer.renamed","time":%q,"subject":%q,"data":null}`, id, at, key)
			e.customer = append(e.customer, int32(c))
			e.ends = append(e.ends, len(e.arena))
			continue
		case r < 111:
			// A writer with a stale version: rejected as a conflict.
			e.arena = fmt.Appendf(e.arena, `{"specversion":"1.0","id":%q,"source":"/crm/profile","type":"customer.renamed","time":%q,"subject":%q,"expectedversion":%d,"data":{"name":"Stale Name"}}`,
				id, at, key, int(version[c])+1+rng.Intn(3))
		default:
			switch r := rng.Intn(10); {
			case r < 3:
				e.arena = fmt.Appendf(e.arena, `{"specversion":"1.0","id":%q,"source":"/crm/profile","type":"customer.renamed","time":%q,"subject":%q,"expectedversion":%d,"data":{"name":"%s %s"}}`,
					id, at, key, version[c], firstNames[rng.Intn(len(firstNames))], lastNames[rng.Intn(len(lastNames))])
			case r < 6:
				e.arena = fmt.Appendf(e.arena, `{"specversion":"1.0","id":%q,"source":"/crm/profile","type":"customer.email_changed","time":%q,"subject":%q,"data":{"email":"c%d.%d@example.org"}}`,
					id, at, key, c, i)
			case r < 8:
				place := cities[rng.Intn(len(cities))]
				e.arena = fmt.Appendf(e.arena, `{"specversion":"1.0","id":%q,"source":"/shipping","type":"customer.address_changed","time":%q,"subject":%q,"data":{"address":{"line1":"%d %s","line2":"Apt %d","city":%q,"postal_code":"%05d","country":%q}}}`,
					id, at, key, 1+rng.Intn(300), streets[rng.Intn(len(streets))], 1+rng.Intn(40), place.city, rng.Intn(100000), place.country)
			case !suspended[c]:
				e.arena = fmt.Appendf(e.arena, `{"specversion":"1.0","id":%q,"source":"/billing","type":"customer.suspended","time":%q,"subject":%q,"data":{"reason":"payment overdue"}}`, id, at, key)
				suspended[c] = true
			default:
				e.arena = fmt.Appendf(e.arena, `{"specversion":"1.0","id":%q,"source":"/billing","type":"customer.reactivated","time":%q,"subject":%q,"data":{}}`, id, at, key)
				suspended[c] = false
			}
			version[c]++
		}
		e.add(c, &last)
	}
	return e
}

// add ends the event just appended to the arena, for customer c.
func (e *Events) add(c int, last *[]int32) {
	(*last)[c] = int32(len(e.ends))
	e.customer = append(e.customer, int32(c))
	e.ends = append(e.ends, len(e.arena))
}

// Map returns the events with each value replaced by fn's answer, in the
// same order and for the same customers. fn runs on workers goroutines at
// once; the first error it returns ends the mapping.
func (e *Events) Map(ctx context.Context, workers int, fn func(ctx context.Context, key string, value []byte) ([]byte, error)) (*Events, error) {
	values := make([][]byte, e.Len())
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	const chunk = 1024
	for from := 0; from < e.Len(); from += chunk {
		g.Go(func() error {
			for i := from; i < min(from+chunk, e.Len()); i++ {
				key, value := e.At(i)
				v, err := fn(ctx, key, value)
				if err != nil {
					return err
				}
				values[i] = v
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	size := 0
	for _, v := range values {
		size += len(v)
	}
	m := &Events{Customers: e.Customers, customer: e.customer, ends: make([]int, 0, e.Len()), arena: make([]byte, 0, size)}
	for _, v := range values {
		m.arena = append(m.arena, v...)
		m.ends = append(m.ends, len(m.arena))
	}
	return m, nil
}
