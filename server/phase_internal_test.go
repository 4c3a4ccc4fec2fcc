package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestClosedIsFinal: a connection that fasthttp's Shutdown closes from its
// own goroutine, just as the connection's goroutine decides to park it,
// stays closed: it is released once, not parked, served again and released
// a second time (which made Stats().Open negative).
func TestClosedIsFinal(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0", Listeners: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		func(*fasthttp.RequestCtx) {})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	cl, err := net.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tc, err := s.lns[0].tl.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	c := s.admit(tc)
	if !c.move(phaseNew, phaseServing) {
		t.Fatal("a new connection")
	}
	_ = c.Close() // Shutdown's goroutine: fasthttp's closeIdleConns
	if c.move(phaseServing, phaseParking) {
		t.Fatal("a closed connection was parked") // the connection's goroutine: Read on errParked
	}
	_ = c.Close()                        // fasthttp, once serveConn returns
	s.connState(c, fasthttp.StateClosed) // must not park it
	if open := s.stats.open.Load(); open != 0 {
		t.Fatalf("open connections = %d, want 0: released more than once", open)
	}
	if err := c.Handshake(); err == nil {
		t.Error("a closed connection's handshake succeeded")
	}
}
