//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package tune

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// listen uses the standard library where tcplisten does not build; the
// listener options it cannot honour are refused by Validate.
func listen(network, addr string, o Options) (*Listener, error) {
	ln, err := new(net.ListenConfig).Listen(context.Background(), network, addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &AddrInUseError{Addr: addr, Err: err}
		}
		return nil, fmt.Errorf("tune: %w", err)
	}
	tcp := ln.(*net.TCPListener)
	conn, err := setInherited(tcp, o)
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("tune: %w", err)
	}
	return newListener(tcp, conn), nil
}

// tcplistenBuilds says whether listen uses tcplisten on this platform.
const tcplistenBuilds = false
