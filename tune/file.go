package tune

import (
	"fmt"
	"net"
	"os"
)

// FileListener makes a *[Listener] of a listening TCP socket that the
// process inherited: one passed by another process over a Unix socket (a
// hand-over from the process it replaces) or by systemd socket
// activation. The socket is used as it was made (its address, backlog,
// SO_REUSEPORT, TCP_DEFER_ACCEPT and TCP_FASTOPEN stay); o's options that
// accepted sockets inherit are set on it again, and the rest are set on
// each connection Accept returns, as with [Listen].
//
// FileListener dups f's descriptor: the caller closes f. The socket is
// shared with every process that still holds it, so connections queued on
// it are served by whichever process accepts them, and none is reset while
// any process holds it.
func FileListener(f *os.File, o Options) (*Listener, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("tune: inherited listener %s: %w", f.Name(), err)
	}
	tcp, ok := ln.(*net.TCPListener)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("tune: inherited listener %s is a %s socket, not TCP", f.Name(), ln.Addr().Network())
	}
	conn, err := setInherited(tcp, o)
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("tune: inherited listener %s: %w", ln.Addr(), err)
	}
	return newListener(tcp, conn), nil
}

// File returns a duplicate of the listening socket's descriptor, to pass
// to another process (see [FileListener]). Closing the file does not close
// the listener.
func (l *Listener) File() (*os.File, error) { return l.tcp.File() }
