package tune

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// An AddrInUseError reports that a socket already listens on Addr, so that
// a listener there could only join it (SO_REUSEPORT) or fail: Probe found
// it, or binding failed with EADDRINUSE.
type AddrInUseError struct {
	Addr string // the address bound
	Err  error  // the error of the bind that showed it
}

func (e *AddrInUseError) Error() string {
	return fmt.Sprintf("tune: address %s in use by another socket: %v", e.Addr, e.Err)
}

func (e *AddrInUseError) Unwrap() error { return e.Err }

// Probe reports, as an *[AddrInUseError], whether a socket already listens
// on the local address: of another process, or of this one. It binds a
// socket there without SO_REUSEPORT (with SO_REUSEADDR, as [net.Listen]
// does, so connections in TIME_WAIT do not count) and closes it at once.
// A listener with SO_REUSEPORT joins, without a word, any group of the same
// user on its address; probing before binding is how a caller that means
// to share nobody else's address finds out. Port 0 is never in use, and an
// error other than EADDRINUSE is left for the bind itself to report.
func Probe(network, addr string) error {
	if err := checkNetwork(network); err != nil {
		return err
	}
	family, bind, err := resolve(network, addr)
	if err != nil {
		return err
	}
	if _, port, _ := net.SplitHostPort(bind); port == "0" {
		return nil
	}
	// "tcp" on an unspecified host binds both families, as Listen does:
	// net.Listen makes a "tcp6" socket IPv6-only, blind to an IPv4
	// listener on the port.
	if network == "tcp" {
		family = network
	}
	ln, err := net.Listen(family, bind)
	if errors.Is(err, syscall.EADDRINUSE) {
		return &AddrInUseError{Addr: addr, Err: err}
	}
	if err == nil {
		ln.Close()
	}
	return nil
}
