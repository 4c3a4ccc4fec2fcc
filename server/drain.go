package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// drain is Shutdown bounded by Config.DrainTimeout. A drain that runs out
// of time, or that a second Shutdown cuts short, has done its job: it
// closed what was still open, and said so in the log; Serve returns nil.
func (s *Server) drain() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	began := time.Now()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil
	}
	if err == nil {
		s.log.Info("drained", "took", time.Since(began).Round(time.Millisecond))
	}
	return err
}

// Shutdown stops accepting on every listener, answers requests that
// arrive during the drain with Connection: close, waits for in-flight
// requests to finish, and closes keep-alive connections that stay idle
// for Config.DrainIdleTimeout. If ctx ends first, it closes the
// connections still open and returns ctx's error. Serve then returns nil.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.draining.CompareAndSwap(false, true) {
		s.drainAt.Store(time.Now().UnixNano())
		s.log.Info("draining", "open", s.stats.open.Load())
	}
	if s.tls.acme != nil {
		s.tls.acme.Stop()
	}
	defer s.drainEnd.Do(func() { close(s.drained) })
	s.handover.Close()
	for _, l := range s.lns {
		l.Close()
	}
	s.closeIdle(ctx)
	if ctx.Err() != nil && s.cfg.BeforeCut != nil {
		s.cfg.BeforeCut()
	}
	// Out of time (closeIdle waits for every connection): what is still
	// open is cut, below or by fasthttp's Shutdown.
	cut := int64(0)
	if ctx.Err() != nil {
		cut = s.stats.open.Load()
	}
	err := s.fs.ShutdownWithContext(ctx)
	// Nothing parks from here on; what is still parked is idle.
	s.unpark(s.poller.stop()...)
	if err != nil {
		// Out of time: close the sockets themselves, outside the lock
		// that closing connections take, and without a TLS close_notify,
		// which could wait on a client that reads nothing.
		for _, c := range s.openConns() {
			c.tcp.Close()
		}
		err = fmt.Errorf("server: shutdown: %w", err)
	} else {
		// Every connection is closed: what the poller started is ending.
		s.unparking.Wait()
	}
	if cut > 0 {
		// after: since the drain began, whichever Shutdown (a second signal's) cut it.
		s.log.Warn("drain out of time: connections cut", "cut", cut, "after", time.Since(time.Unix(0, s.drainAt.Load())).Round(time.Millisecond))
	}
	// The admin listener stays up through the drain, so /readyz reports
	// it; it goes last.
	for _, p := range s.plain {
		p.ln.Close()
		if perr := p.fs.ShutdownWithContext(ctx); perr != nil && err == nil {
			err = fmt.Errorf("server: shutdown %s: %w", p.name, perr)
		}
	}
	return err
}

// closeIdle waits until every connection is closed, or ctx ends, closing
// each that has been idle for DrainIdleTimeout since it went idle or the
// drain began, whichever is later. fasthttp's own Shutdown would close
// idle connections at once.
func (s *Server) closeIdle(ctx context.Context) {
	start := time.Now().UnixNano()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var closing []*conn
	for {
		now := time.Now().UnixNano()
		s.mu.Lock()
		for c := range s.conns {
			since := c.idleSince.Load()
			if since == 0 {
				continue
			}
			if time.Duration(now-max(since, start)) >= s.cfg.DrainIdleTimeout {
				closing = append(closing, c)
			}
		}
		open := len(s.conns)
		s.mu.Unlock()
		// Outside the lock: closing a parked connection releases it.
		for _, c := range closing {
			s.closeConn(c)
		}
		closing = closing[:0]
		if open == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Drained is closed when the first Shutdown (or Serve's own drain) has
// returned.
func (s *Server) Drained() <-chan struct{} { return s.drained }

// Draining reports whether Shutdown has begun: a readiness check fails
// from then on, so that a balancer stops sending new connections.
func (s *Server) Draining() bool { return s.draining.Load() }

// openConns is the connections open now.
func (s *Server) openConns() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.conns))
}
