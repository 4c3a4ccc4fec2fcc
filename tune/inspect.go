package tune

import (
	"fmt"
	"net"
	"syscall"
	"time"
)

// SocketState is what the kernel holds for one TCP connection, read back
// with getsockopt(2): the options in force, and figures from TCP_INFO.
type SocketState struct {
	KeepAlive         bool          // SO_KEEPALIVE
	KeepAliveIdle     time.Duration // TCP_KEEPIDLE
	KeepAliveInterval time.Duration // TCP_KEEPINTVL
	KeepAliveCount    int           // TCP_KEEPCNT
	UserTimeout       time.Duration // TCP_USER_TIMEOUT; 0 is off
	NoDelay           bool          // TCP_NODELAY
	ReadBuffer        int           // SO_RCVBUF: twice the size that was set
	WriteBuffer       int           // SO_SNDBUF: twice the size that was set

	State            TCPState      // the connection's TCP state
	RTT              time.Duration // smoothed round-trip time
	RTTVar           time.Duration // round-trip time variation
	Retransmits      int           // retransmissions of the oldest unacknowledged segment so far
	TotalRetransmits uint32        // segments retransmitted over the connection's life
	Probes           int           // keep-alive or zero-window probes sent without an answer
	Unacked          uint32        // segments sent and not yet acknowledged
	Lost             uint32        // segments the kernel counts as lost
	BytesAcked       uint64        // bytes sent and acknowledged by the peer
	BytesReceived    uint64        // bytes received from the peer
	SynData          bool          // data arrived in the SYN (TCP Fast Open)

	// For a listening socket: the accept queue's limit (the backlog) and
	// the connections waiting in it for Accept.
	Backlog uint32
	Queued  uint32
}

// TCPState is a TCP connection state, as in include/net/tcp_states.h.
type TCPState uint8

var tcpStateNames = [...]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
	6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
	11: "CLOSING", 12: "NEW_SYN_RECV",
}

func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) && tcpStateNames[s] != "" {
		return tcpStateNames[s]
	}
	return fmt.Sprintf("TCPState(%d)", uint8(s))
}

// Inspect reads back what the kernel holds for the TCP socket under c. It
// sees through a *tls.Conn, and through any wrapper with a NetConn() method
// that returns the connection it wraps; it reads any connection with a
// SyscallConn method, listeners' sockets included. On platforms other than
// Linux it returns an error that wraps errors.ErrUnsupported.
func Inspect(c net.Conn) (SocketState, error) {
	rc, err := rawConn(c)
	if err != nil {
		return SocketState{}, err
	}
	return inspect(rc)
}

// PeerClosed reports whether the peer of the TCP connection under c has
// closed it (a FIN came: CLOSE_WAIT) or reset it (CLOSE), from the
// kernel's TCP state: one getsockopt(TCP_INFO), which consumes nothing the
// peer sent. A reverse proxy asks it while a request waits for its
// upstream, to give up on a client that left. It reaches the socket as
// Inspect does. On a connection closed on this side it returns an error
// that wraps net.ErrClosed; on platforms other than Linux, one that wraps
// errors.ErrUnsupported.
func PeerClosed(c net.Conn) (bool, error) {
	rc, err := rawConn(c)
	if err != nil {
		return false, err
	}
	st, err := tcpState(rc)
	if err != nil {
		return false, err
	}
	switch st {
	case stateCloseWait, stateClose, stateLastAck, stateClosing, stateTimeWait:
		return true, nil
	}
	return false, nil
}

// Unread reports whether bytes, or the peer's FIN, wait to be read on the
// socket under c, without consuming them: one recv(MSG_PEEK|MSG_DONTWAIT).
// A client of a keep-alive pool asks it before it reuses an idle
// connection: bytes there were sent after the answer they should have
// been part of, and would be read as the next request's answer. It
// reaches the socket as Inspect does; on platforms other than Linux it
// returns an error that wraps errors.ErrUnsupported.
func Unread(c net.Conn) (bool, error) {
	s, err := SocketOf(c)
	if err != nil {
		return false, err
	}
	return s.Unread()
}

// A Socket is the socket under a connection, reached once (as Inspect
// reaches it), for a caller that asks of it again and again: a pool that
// looks for unread bytes on each connection before it reuses it keeps
// one per connection, and each Unread then allocates nothing.
type Socket struct {
	rc     syscall.RawConn
	peekFn func(fd uintptr) // s.peekFD, bound once
	b      [1]byte
	unread bool
	err    error
}

// SocketOf reaches the socket under c.
func SocketOf(c net.Conn) (*Socket, error) {
	rc, err := rawConn(c)
	if err != nil {
		return nil, err
	}
	s := &Socket{rc: rc}
	s.peekFn = s.peekFD
	return s, nil
}

// Unread is Unread of the socket's connection: one
// recv(MSG_PEEK|MSG_DONTWAIT).
func (s *Socket) Unread() (bool, error) { return s.peek() }

// The TCP states after the peer's FIN or reset (include/net/tcp_states.h).
const (
	stateTimeWait  TCPState = 6
	stateClose     TCPState = 7
	stateCloseWait TCPState = 8
	stateLastAck   TCPState = 9
	stateClosing   TCPState = 11
)

// rawConn reaches the socket under c: through NetConn() wrappers (a
// *tls.Conn among them) to one with SyscallConn.
func rawConn(c net.Conn) (syscall.RawConn, error) {
	orig := c
	for c != nil {
		switch v := c.(type) {
		case syscall.Conn:
			rc, err := v.SyscallConn()
			if err != nil {
				return nil, fmt.Errorf("tune: %w", err)
			}
			return rc, nil
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil, fmt.Errorf("tune: cannot reach a socket under %T: it has neither SyscallConn nor NetConn", orig)
		}
	}
	return nil, fmt.Errorf("tune: cannot reach a socket under %T: NetConn returned nil", orig)
}

// InspectListener reads back the options of a listening socket (for
// example a *Listener or a *net.TCPListener): those that the connections it
// accepts inherit, and its state.
func InspectListener(l syscall.Conn) (SocketState, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return SocketState{}, fmt.Errorf("tune: %w", err)
	}
	return inspect(rc)
}
