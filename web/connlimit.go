package web

import (
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
)

// Each open connection costs the server about 20 KiB (a goroutine, its
// read and write buffers) even when idle: 8,000 idle keep-alive
// connections took an instance from 28 MB to 189 MB of RSS. The slot
// bounds on requests do not see a connection between requests, so
// connections are bounded too, in total and per client address, when
// they are accepted. A connection over a bound is closed at once, before
// a byte is read: there is no request yet to answer.

// connLimit bounds the connections a listener hands to the server.
type connLimit struct {
	slots   *slots
	refused prometheus.Counter
}

func newConnLimit(cfg Config, reg prometheus.Registerer) (*connLimit, error) {
	l := &connLimit{
		slots: newSlots("connections", cfg.MaxConnections, cfg.MaxConnectionsPerClient),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfold_http_connections_refused_total",
			Help: "HTTP connections closed at accept because the server or their client held the most allowed.",
		}),
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventfold_http_connections",
		Help: "Open HTTP connections.",
	}, func() float64 { return float64(l.slots.open()) })
	for _, c := range []prometheus.Collector{l.refused, open} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("failed to register connection metrics: %w", err)
		}
	}
	return l, nil
}

// wrap returns ln with its accepted connections counted against l.
func (l *connLimit) wrap(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, limit: l}
}

type limitedListener struct {
	net.Listener
	limit *connLimit
}

// Accept returns the next connection within the bounds, closing the ones
// over them.
func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, err := ln.limit.slots.acquire(hostOf(c.RemoteAddr()))
		if err != nil {
			ln.limit.refused.Inc()
			_ = c.Close() // refused: nothing was read or written
			continue
		}
		return &limitedConn{Conn: c, release: release}, nil
	}
}

// limitedConn gives its slot back when it is closed; release runs once
// however often Close is called.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	defer c.release()
	return c.Conn.Close()
}

// hostOf is the client a connection counts against: its remote IP.
func hostOf(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
