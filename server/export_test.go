package server

import (
	"errors"
	"testing"
	"time"
)

// SetACMERenewCheck sets how often a's certificates are checked for
// renewal, so that a test sees a renewal in seconds.
func SetACMERenewCheck(a *ACME, d time.Duration) { a.renewCheck = d }

// FailPoller makes New fail to create the poller of parked connections,
// as when epoll_create1 finds no descriptor left, until restore is called
// or the test ends.
func FailPoller(t testing.TB) (restore func()) {
	makePoller = func(*Server) (*poller, error) { return nil, errors.New("server: epoll_create1: too many open files") }
	restore = func() { makePoller = newPoller }
	t.Cleanup(restore)
	return restore
}
