package tune

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Listen announces on the local network address, with the listening socket
// built by tcplisten as o says (SO_REUSEPORT, TCP_DEFER_ACCEPT, TCP_FASTOPEN,
// backlog), and returns a *[Listener] whose Accept hands back *net.TCPConn
// values that already carry o's per-connection options. Wrapped in
// [crypto/tls.NewListener], it gives TLS a tuned socket.
//
// The network must be "tcp", "tcp4" or "tcp6". With "tcp" and an empty or
// unspecified host (":8443", "0.0.0.0:8443", "[::]:8443"), Listen binds one
// dual-stack IPv6 socket that also accepts IPv4 clients, as [net.Listen]
// does; where the host cannot do that (net.ipv6.bindv6only=1, or a platform
// without dual-stack sockets) it fails and says so, and the caller listens
// on "tcp4" and "tcp6" separately. On a host without IPv6 it binds IPv4
// only. A host name is resolved and the first address is used.
//
// Invalid options are reported, every one of them, as *[OptionError] values
// before any socket is made.
func Listen(network, addr string, o Options) (net.Listener, error) {
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ln, err := listen(network, addr, o)
	if err != nil {
		return nil, err
	}
	return ln, nil
}

// ListenGroup opens n listeners on one address with SO_REUSEPORT (whatever
// o.ReusePort says), so that n accept loops share the connections: the
// kernel hashes each new connection's addresses and ports to pick the
// listener that queues it. If addr has port 0, the first listener's port is
// used for the rest. Each returned net.Listener is a *[Listener].
//
// Closing one listener of the group resets the connections queued on it
// but not yet accepted (unless net.ipv4.tcp_migrate_req is 1): close a
// group only as a whole, or drain each listener before closing it.
func ListenGroup(network, addr string, n int, o Options) ([]net.Listener, error) {
	if n < 1 {
		return nil, fmt.Errorf("tune: ListenGroup needs n >= 1 listeners, got %d", n)
	}
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	o.ReusePort = true
	if err := o.Validate(); err != nil {
		return nil, err
	}
	lns := make([]net.Listener, 0, n)
	for range n {
		ln, err := listen(network, addr, o)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		if len(lns) == 0 {
			host, _, _ := net.SplitHostPort(addr)
			addr = net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return fmt.Errorf(`tune: network must be "tcp", "tcp4" or "tcp6", got %q`, network)
}

// resolve maps "tcp" to "tcp4" or "tcp6" the way net.Listen picks a family,
// since tcplisten takes only those two, and returns the address to bind.
func resolve(network, addr string) (string, string, error) {
	if network != "tcp" {
		return network, addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("tune: address %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		v6, err := dualStack()
		if err != nil {
			return "", "", fmt.Errorf("tune: network \"tcp\" on %q: %w; listen on \"tcp4\" and \"tcp6\" separately", addr, err)
		}
		if !v6 {
			return "tcp4", net.JoinHostPort("0.0.0.0", port), nil
		}
		return "tcp6", net.JoinHostPort("::", port), nil
	}
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return "", "", fmt.Errorf("tune: %w", err)
	}
	if a.IP.To4() != nil {
		return "tcp4", a.String(), nil
	}
	return "tcp6", a.String(), nil
}

// A Listener is a TCP listener that applies Options to each connection it
// accepts, and keeps serving through errors that concern one connection or
// a passing shortage of resources.
//
// Accept returns only a *net.TCPConn with every option set, or the error of
// a listener that is closed or past its deadline. A connection whose
// options cannot be set is closed and counted, and Accept waits for the
// next. On a transient error (EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED
// and the network errors accept(2) says to retry) Accept counts it, waits
// 5 ms, doubling on each error in a row up to 1 s, and tries again: a
// server that runs out of file descriptors stops accepting until some are
// freed, then goes on. Close ends the wait at once.
type Listener struct {
	tcp   *net.TCPListener
	conn  Options // what is left to set on each accepted connection
	apply bool    // whether conn sets anything

	done      chan struct{}
	closeOnce sync.Once

	accepted       atomic.Uint64
	optionFailures atomic.Uint64
	transient      atomic.Uint64
}

// Stats counts what a Listener did since it was made.
type Stats struct {
	Accepted        uint64 // connections handed to the caller
	OptionFailures  uint64 // connections closed because an option could not be set
	TransientErrors uint64 // accept errors that were waited out and retried
}

func newListener(tcp *net.TCPListener, conn Options) *Listener {
	return &Listener{
		tcp:   tcp,
		conn:  conn,
		apply: conn != (Options{}),
		done:  make(chan struct{}),
	}
}

// Accept waits for the next connection and returns it with its options set.
func (l *Listener) Accept() (net.Conn, error) {
	return l.AcceptTCP()
}

// AcceptTCP is Accept with the concrete type.
func (l *Listener) AcceptTCP() (*net.TCPConn, error) {
	var delay time.Duration
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if !isTransient(err) {
				return nil, err
			}
			l.transient.Add(1)
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.wait(delay)
			continue
		}
		delay = 0
		if l.apply {
			if err := apply(c, l.conn); err != nil {
				l.optionFailures.Add(1)
				c.Close()
				continue
			}
		}
		l.accepted.Add(1)
		return c, nil
	}
}

// wait sleeps for d or until the listener is closed.
func (l *Listener) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.done:
	}
}

// Close stops listening. Connections queued but not yet accepted are reset.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.tcp.Close()
}

// Addr returns the listener's network address.
func (l *Listener) Addr() net.Addr { return l.tcp.Addr() }

// SetDeadline sets the time after which Accept fails with a timeout.
func (l *Listener) SetDeadline(t time.Time) error { return l.tcp.SetDeadline(t) }

// SyscallConn gives access to the listening socket, for reading its options.
func (l *Listener) SyscallConn() (syscall.RawConn, error) { return l.tcp.SyscallConn() }

// Stats returns the listener's counters. It is safe to call at any time.
func (l *Listener) Stats() Stats {
	return Stats{
		Accepted:        l.accepted.Load(),
		OptionFailures:  l.optionFailures.Load(),
		TransientErrors: l.transient.Load(),
	}
}

// Add returns the sum of two Stats, to total a group of listeners.
func (s Stats) Add(t Stats) Stats {
	return Stats{
		Accepted:        s.Accepted + t.Accepted,
		OptionFailures:  s.OptionFailures + t.OptionFailures,
		TransientErrors: s.TransientErrors + t.TransientErrors,
	}
}

// transientErrors are the accept errors that do not mean the listener is
// broken: a shortage of descriptors or memory, or trouble with the one
// connection being accepted (accept(2), "Error handling").
var transientErrors = [...]error{
	syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
	syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPERM,
	syscall.ENETDOWN, syscall.ENETUNREACH, syscall.EHOSTUNREACH,
	syscall.EPROTO, syscall.ENOPROTOOPT, syscall.EOPNOTSUPP,
}

func isTransient(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, t := range transientErrors {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
