//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package tune

import (
	"fmt"
	"net"

	"github.com/valyala/tcplisten"
)

// listen builds the listening socket with tcplisten, sets the options the
// platform lets accepted sockets inherit, and leaves the rest to Accept.
func listen(network, addr string, o Options) (*Listener, error) {
	network, addr, err := resolve(network, addr)
	if err != nil {
		return nil, err
	}
	cfg := tcplisten.Config{
		ReusePort:   o.ReusePort,
		DeferAccept: o.DeferAccept,
		FastOpen:    o.FastOpen,
		Backlog:     o.Backlog,
	}
	ln, err := cfg.NewListener(network, addr)
	if err != nil {
		err = fmt.Errorf("tune: listen %s %s: %w", network, addr, err)
		if Probe(network, addr) != nil { // tcplisten's errors do not wrap the errno
			return nil, &AddrInUseError{Addr: addr, Err: err}
		}
		return nil, err
	}
	tcp := ln.(*net.TCPListener)
	conn, err := setInherited(tcp, o)
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("tune: listen %s %s: %w", network, addr, err)
	}
	return newListener(tcp, conn), nil
}

// tcplistenBuilds says whether listen uses tcplisten on this platform.
//
//lint:ignore U1000 read by sockopt_other.go, which builds on the platforms other than Linux that use tcplisten
const tcplistenBuilds = true
