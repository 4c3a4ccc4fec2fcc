package server

import (
	"sync/atomic"
	"time"
)

// deadlines are a connection's socket deadlines, and the minimum
// transfer rate's credit (Config.MinRate). Deadlines move on every
// request (idle, header, body, rate credit), and each change of a
// socket's deadline takes the runtime's timer lock: so they are set on
// the socket lazily, a read deadline only when it would fire later than
// the one there, a write deadline once it is an eighth of WriteTimeout
// behind.
type deadlines struct {
	// beforeHandshake is the read deadline fasthttp set before the
	// handshake, kept for it (the handshake has its own).
	beforeHandshake time.Time
	// asked is the read deadline fasthttp last set (zero for none): the
	// bound of the current wait, header or body, before rate credit. A
	// wait for the next request takes it as its end (park.go).
	asked time.Time
	// The read deadline asked for, credit included, and what the socket
	// holds.
	want, applied time.Time
	// The socket's write deadline (Unix ns, 0 for none): atomic, since a
	// handler streaming its body (SetBodyStreamWriter) may set one from
	// its own goroutine while this one writes.
	write atomic.Int64

	// The minimum transfer rate: bytes read since asked was set, and how
	// far the deadline has been pushed for them.
	rateBytes    int64
	rateExtended time.Duration
}

// read reads under the read deadline asked for. The socket may hold an
// earlier one (setRead leaves it when a later one is asked for): when that
// fires first, the one asked for is set and the read goes on. A deadline
// that expires does not break a *tls.Conn (crypto/tls keeps only errors
// that are not Temporary, and a deadline's is), and what it read of a
// record stays in its buffer.
func (c *conn) read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if n > 0 || !isTimeout(err) || c.dl.applied.Equal(c.dl.want) ||
			(!c.dl.want.IsZero() && !time.Now().Before(c.dl.want)) {
			return n, err
		}
		if err := c.applyRead(c.dl.want); err != nil {
			return 0, err
		}
	}
}

// setRead asks for a read deadline: the socket's changes only if it would
// fire later than t. One that would fire earlier stays, and read sets t
// when it fires.
func (c *conn) setRead(t time.Time) error {
	c.dl.want = t
	if t.IsZero() || (!c.dl.applied.IsZero() && !c.dl.applied.After(t)) {
		return nil
	}
	return c.applyRead(t)
}

func (c *conn) applyRead(t time.Time) error {
	c.dl.applied = t
	return c.Conn.SetReadDeadline(t)
}

// afterHandshake sets the deadlines for the first request: the header
// timeout from now, if fasthttp asked for a read deadline before the
// handshake, and no write deadline.
func (c *conn) afterHandshake() error {
	rd := time.Time{}
	if !c.dl.beforeHandshake.IsZero() {
		rd = time.Now().Add(c.srv.cfg.HeaderTimeout)
	}
	c.dl.asked = rd
	if err := c.applyRead(rd); err != nil {
		return err
	}
	c.dl.want = rd
	return c.setWrite(time.Time{})
}

// ask takes a read deadline fasthttp sets (header, body, idle) as the
// new base of the rate credit.
func (c *conn) ask(t time.Time) error {
	c.dl.asked, c.dl.rateBytes, c.dl.rateExtended = t, 0, 0
	return c.setRead(t)
}

// creditRate applies the minimum transfer rate (Config.MinRate) to n
// bytes read: the read deadline fasthttp set (header, body, idle) moves
// 1 s later for every MinRate bytes received since, as Apache's
// mod_reqtimeout MinRate does, so the client must average the rate after
// the first timeout. A client sending at or above the rate is never cut,
// whatever the size of its upload; one below it reaches the deadline. The
// credit never outlasts a stall: the deadline is at most BodyTimeout after
// the last credited read, as nginx's client_body_timeout bounds the time
// between two reads, so an upload that stops is closed within BodyTimeout
// of its stop, whatever it sent before. The deadline is moved at most once
// per second of credit, so a small request moves it not at all.
func (c *conn) creditRate(n int) {
	if c.dl.asked.IsZero() {
		return
	}
	rate := int64(c.srv.cfg.MinRate)
	c.dl.rateBytes += int64(n)
	ext := time.Duration(c.dl.rateBytes/rate) * time.Second
	if ext > c.dl.rateExtended {
		c.dl.rateExtended = ext
		t := c.dl.asked.Add(ext)
		if stall := time.Now().Add(c.srv.cfg.BodyTimeout); stall.Before(t) {
			t = stall
		}
		_ = c.setRead(t)
	}
}

// moveWriteDeadline gives a write the write timeout. The deadline is
// moved only once it is an eighth of the write timeout behind, not on
// every write: a stalled write is cut between 7/8 of WriteTimeout and
// WriteTimeout after it began.
func (c *conn) moveWriteDeadline() error {
	wt := c.srv.cfg.WriteTimeout
	if want := time.Now().Add(wt); c.dl.write.Load() < want.Add(-wt/8).UnixNano() {
		return c.setWrite(want)
	}
	return nil
}

func (c *conn) setWrite(t time.Time) error {
	if t.IsZero() {
		c.dl.write.Store(0)
	} else {
		c.dl.write.Store(t.UnixNano())
	}
	return c.Conn.SetWriteDeadline(t)
}

// SetReadDeadline is fasthttp's. Before the handshake it is kept for it:
// the handshake has its own deadline.
func (c *conn) SetReadDeadline(t time.Time) error {
	if c.phase() == phaseNew {
		c.dl.beforeHandshake = t
		return nil
	}
	return c.ask(t)
}

// SetWriteDeadline is a handler's (fasthttp's RequestCtx.SetWriteDeadline).
func (c *conn) SetWriteDeadline(t time.Time) error { return c.setWrite(t) }

func (c *conn) SetDeadline(t time.Time) error {
	if c.phase() == phaseNew {
		c.dl.beforeHandshake = t
		return nil
	}
	if err := c.ask(t); err != nil {
		return err
	}
	return c.setWrite(t)
}
