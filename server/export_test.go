package server

import (
	"errors"
	"testing"
)

// FailPoller makes New fail to create the poller of parked connections,
// as when epoll_create1 finds no descriptor left, until restore is called
// or the test ends.
func FailPoller(t testing.TB) (restore func()) {
	makePoller = func(*Server) (*poller, error) { return nil, errors.New("server: epoll_create1: too many open files") }
	restore = func() { makePoller = newPoller }
	t.Cleanup(restore)
	return restore
}
