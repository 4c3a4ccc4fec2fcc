//go:build !linux

package tune

import (
	"errors"
	"net"
	"runtime"
	"syscall"
	"time"
)

func unsupported(field string, v any) error {
	return &OptionError{Field: field, Value: v, Allowed: "on " + runtime.GOOS, Err: errors.ErrUnsupported}
}

func (o Options) platformErrors(listener bool) []error {
	var errs []error
	if o.UserTimeout > 0 {
		errs = append(errs, unsupported("UserTimeout", o.UserTimeout))
	}
	if !listener {
		return errs
	}
	// tcplisten accepts DeferAccept and FastOpen on the BSDs and macOS but
	// sets nothing for them.
	if o.DeferAccept {
		errs = append(errs, unsupported("DeferAccept", true))
	}
	if o.FastOpen {
		errs = append(errs, unsupported("FastOpen", true))
	}
	if !tcplistenBuilds {
		if o.ReusePort {
			errs = append(errs, unsupported("ReusePort", true))
		}
		if o.Backlog != 0 {
			errs = append(errs, unsupported("Backlog", o.Backlog))
		}
	}
	return errs
}

// dualStack: macOS binds [::] dual-stack by default; the BSDs do not.
func dualStack() (bool, error) {
	if runtime.GOOS == "darwin" {
		return true, nil
	}
	return false, errors.New("IPv6 sockets are IPv6-only on " + runtime.GOOS)
}

// setInherited leaves every option to Accept: what accepted sockets inherit
// differs between these systems.
func setInherited(_ *net.TCPListener, o Options) (Options, error) {
	return Options{
		KeepAlive:        o.KeepAlive,
		DisableKeepAlive: o.DisableKeepAlive,
		NoDelay:          o.NoDelay,
		ReadBuffer:       o.ReadBuffer,
		WriteBuffer:      o.WriteBuffer,
	}, nil
}

func setUserTimeout(*net.TCPConn, time.Duration) error {
	return unsupported("UserTimeout", nil)
}

func inspect(syscall.RawConn) (SocketState, error) {
	return SocketState{}, &OptionError{Field: "Inspect", Allowed: "on " + runtime.GOOS, Err: errors.ErrUnsupported}
}

func tcpState(syscall.RawConn) (TCPState, error) {
	return 0, &OptionError{Field: "PeerClosed", Allowed: "on " + runtime.GOOS, Err: errors.ErrUnsupported}
}

func (s *Socket) peekFD(uintptr) {}

func (s *Socket) peek() (bool, error) {
	return false, &OptionError{Field: "Unread", Allowed: "on " + runtime.GOOS, Err: errors.ErrUnsupported}
}

// userTimeoutSupported: there is no TCP_USER_TIMEOUT here, so none is
// derived from KeepAlive.
const userTimeoutSupported = false
