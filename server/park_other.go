//go:build !linux

package server

import "errors"

// poller would hold parked connections; parking needs Linux's epoll, so
// elsewhere no connection parks and each keeps its goroutine while idle,
// as without IdleParkAfter.
type poller struct{}

var errParkingUnsupported = errors.New("parking idle connections needs Linux")

func newPoller(*Server) (*poller, error) { return nil, errParkingUnsupported }
func (*poller) start()                   {}
func (*poller) add(*conn) bool           { return false }
func (*poller) remove(*conn) bool        { return false }
func (*poller) stop() []*conn            { return nil }

const parkingSupported = false
