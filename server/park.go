package server

import (
	"errors"
	"time"
)

// Parking (Config.IdleParkAfter): fasthttp serves a connection from one
// goroutine, which, between requests, sits in a 1-byte read of the next
// request's first byte (with StreamRequestBody, a read into its kept,
// empty read buffer). With its buffers released (the default), that
// goroutine's stack, 8 KiB, is most of what an idle connection costs. So
// when that read has waited IdleParkAfter, conn.Read ends it with io.EOF,
// which fasthttp takes for a client that went away: it returns, and calls
// Close, then ConnState(StateClosed). Close does nothing for a parking
// connection, and connState hands it to the poller (parkConn) instead of
// counting it closed. The *tls.Conn keeps its state: a read deadline that
// expires is not fatal to it (crypto/tls keeps only errors that are not
// Temporary, and a deadline's is), and bytes of a record read so far stay
// in its buffer. When the client sends, the poller serves the connection
// again through fasthttp's ServeConn, which reads the request as a first
// one (ReadTimeout, that is HeaderTimeout, from the wake); the wait itself
// stays bounded by its original deadline (conn.wait.end), which the poller
// enforces while the connection is parked.

// sweepInterval is how often the poller closes the parked connections
// whose wait is over.
const sweepInterval = time.Second

// parkSkew covers the clock reads between the idle timestamp waitRead
// starts from and the deadline fasthttp sets from its own reading a
// moment later: a wait that ends with IdleParkAfter (IdleTimeout equal to
// it) ends on its goroutine instead of parking just before its end.
const parkSkew = 10 * time.Millisecond

// idleWait is a connection's wait for its next request (or its first),
// across parks.
type idleWait struct {
	on  bool      // a wait is under way
	end time.Time // its deadline (IdleTimeout, or HeaderTimeout before a first request), or zero for none
	fd  int32     // the socket, while parked
}

// errParked ends an idle wait that has lasted IdleParkAfter.
var errParked = errors.New("server: idle connection parked")

// waitRead is a read of the next request's first byte. It waits at most
// IdleParkAfter (and not past the wait's own deadline, IdleTimeout or
// HeaderTimeout), then returns errParked if nothing came. As conn.read,
// it leaves an earlier deadline on the socket (the last wait's, on a busy
// connection) and moves it only when that one fires first, so that a
// request costs no deadline change.
func (c *conn) waitRead(b []byte) (int, error) {
	w := &c.wait
	if !w.on {
		w.on, w.end = true, c.dl.asked
	}
	now := c.takeIdleStamp()
	if now.IsZero() {
		now = time.Now()
	}
	parkAt := now.Add(c.srv.cfg.IdleParkAfter)
	if !w.end.IsZero() && !w.end.After(parkAt.Add(parkSkew)) {
		// The wait is over before it would park.
		if err := c.applyRead(w.end); err != nil {
			return 0, err
		}
		w.on = false
		return c.Conn.Read(b)
	}
	if c.dl.applied.IsZero() || c.dl.applied.After(parkAt) {
		if err := c.applyRead(parkAt); err != nil {
			return 0, err
		}
	}
	for {
		n, err := c.Conn.Read(b)
		if n > 0 || !isTimeout(err) {
			w.on = false
			return n, err
		}
		if c.dl.applied.Before(parkAt) && time.Now().Before(parkAt) {
			// An earlier deadline fired: wait on until parkAt.
			if err := c.applyRead(parkAt); err != nil {
				return 0, err
			}
			continue
		}
		// The deadline has passed, so this reads nothing from the socket;
		// it returns a byte only if the *tls.Conn holds a whole record (it
		// should not, having waited for more). A byte that reaches the
		// socket meanwhile wakes the poller at once.
		n, err = c.Conn.Read(b)
		if n == 0 && isTimeout(err) {
			return 0, errParked
		}
		w.on = false
		return n, err
	}
}

// parkConn hands a connection whose wait ended with errParked to the
// poller, or closes it if the poller has stopped or the socket is closed.
func (s *Server) parkConn(c *conn) {
	s.stats.parked.Add(1)
	if s.poller.add(c) {
		s.stats.parks.Add(1)
		return
	}
	s.stats.parked.Add(-1)
	s.closeParked(c)
}

// unpark closes connections taken from the poller.
func (s *Server) unpark(cs ...*conn) {
	s.stats.parked.Add(-int64(len(cs)))
	s.closeParked(cs...)
}

// resume serves a parked connection whose client sent or hung up.
func (s *Server) resume(c *conn) {
	defer s.unparking.Done()
	s.stats.parked.Add(-1)
	if !c.move(phaseParking, phaseServing) {
		return // closed meanwhile: nothing to serve
	}
	// The client sent (or hung up) before the poller closed the
	// connection, whose wait may have ended meanwhile (the poller closes
	// expired ones once a second): read what it sent.
	if now := time.Now(); !c.wait.end.IsZero() && c.wait.end.Before(now.Add(sweepInterval)) {
		c.wait.end = now.Add(sweepInterval)
	}
	// Errors are the client's (a reset, a timeout), as those fasthttp's
	// workers do not log.
	_ = s.fs.ServeConn(c)
}

// closeParked closes connections that gave their goroutine up, counting
// them as closed idle connections.
func (s *Server) closeParked(cs ...*conn) {
	for _, c := range cs {
		c.endIdle()
		if c.move(phaseParking, phaseServing) {
			_ = c.Close()
		}
	}
}

// closeConn closes a connection from outside its goroutine (Shutdown): a
// parked one through the poller, any other by closing its socket, which
// ends its goroutine's read.
func (s *Server) closeConn(c *conn) {
	if c.phase() == phaseParking && s.poller.remove(c) {
		s.unpark(c)
		return
	}
	c.Conn.Close()
}
