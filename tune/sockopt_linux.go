package tune

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readSysctl reads an integer from /proc/sys. The network ones are read in
// the network namespace of the calling thread.
func readSysctl(name string) (int, error) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// bufferLimits are net.core.rmem_max and wmem_max; they are not per network
// namespace, and are read once.
var bufferLimits = sync.OnceValues(func() (int, int) {
	r, err := readSysctl("net.core.rmem_max")
	if err != nil {
		r = 0
	}
	w, err := readSysctl("net.core.wmem_max")
	if err != nil {
		w = 0
	}
	return r, w
})

func (o Options) platformErrors(listener bool) []error {
	var errs []error
	rmax, wmax := bufferLimits()
	if rmax > 0 && o.ReadBuffer > rmax {
		errs = append(errs, &OptionError{Field: "ReadBuffer", Value: o.ReadBuffer,
			Allowed: fmt.Sprintf("from 0 to %d bytes (net.core.rmem_max)", rmax)})
	}
	if wmax > 0 && o.WriteBuffer > wmax {
		errs = append(errs, &OptionError{Field: "WriteBuffer", Value: o.WriteBuffer,
			Allowed: fmt.Sprintf("from 0 to %d bytes (net.core.wmem_max)", wmax)})
	}
	if !listener {
		return errs
	}
	if max, err := readSysctl("net.core.somaxconn"); err == nil && o.Backlog > max {
		errs = append(errs, &OptionError{Field: "Backlog", Value: o.Backlog,
			Allowed: fmt.Sprintf("from 0 to %d (net.core.somaxconn)", max)})
	}
	if o.FastOpen {
		if v, err := readSysctl("net.ipv4.tcp_fastopen"); err != nil || v&2 == 0 {
			errs = append(errs, &OptionError{Field: "FastOpen", Value: true,
				Allowed: fmt.Sprintf("false where net.ipv4.tcp_fastopen (%d here) lacks the server bit 0x2 (sysctl -w net.ipv4.tcp_fastopen=3 sets it)", v)})
		}
	}
	return errs
}

// dualStack reports whether an IPv6 socket bound to [::] also accepts IPv4
// clients here. It is false, with no error, on a host without IPv6.
func dualStack() (bool, error) {
	v, err := readSysctl("net.ipv6.bindv6only")
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if v != 0 {
		return false, fmt.Errorf("net.ipv6.bindv6only=%d makes IPv6 sockets IPv6-only here, so one socket cannot take both families", v)
	}
	return true, nil
}

// setInherited sets on the listening socket the options Linux copies to the
// sockets it accepts (TCP_USER_TIMEOUT, SO_RCVBUF, SO_SNDBUF; tcplisten sets
// TCP_NODELAY), so no accepted connection pays a system call for them. A
// receive buffer set this way is in place before the handshake, when the
// window scale is chosen. Go's Accept overwrites keep-alive on every
// connection it returns, so keep-alive is what is left to set per
// connection.
func setInherited(ln *net.TCPListener, o Options) (Options, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return Options{}, err
	}
	var serr error
	set := func(fd, level, opt, v int, name string) {
		if serr == nil {
			if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
				serr = fmt.Errorf("set %s on the listening socket: %w", name, err)
			}
		}
	}
	err = rc.Control(func(fd uintptr) {
		s := int(fd)
		if ut := o.EffectiveUserTimeout(); ut > 0 {
			set(s, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(ut/time.Millisecond), "TCP_USER_TIMEOUT")
		}
		if o.ReadBuffer > 0 {
			set(s, unix.SOL_SOCKET, unix.SO_RCVBUF, o.ReadBuffer, "SO_RCVBUF")
		}
		if o.WriteBuffer > 0 {
			set(s, unix.SOL_SOCKET, unix.SO_SNDBUF, o.WriteBuffer, "SO_SNDBUF")
		}
	})
	if err == nil {
		err = serr
	}
	// The user timeout, derived or not, is the listener's: none per
	// connection.
	return Options{KeepAlive: o.KeepAlive, DisableKeepAlive: o.DisableKeepAlive, UserTimeout: -1}, err
}

func setUserTimeout(c *net.TCPConn, d time.Duration) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond))
	}); err != nil {
		return err
	}
	return serr
}

// inspect reads the socket's options and TCP_INFO.
func inspect(rc syscall.RawConn) (SocketState, error) {
	var st SocketState
	var gerr error
	get := func(fd, level, opt int, name string) int {
		v, err := unix.GetsockoptInt(fd, level, opt)
		if err != nil && gerr == nil {
			gerr = fmt.Errorf("tune: getsockopt %s: %w", name, err)
		}
		return v
	}
	err := rc.Control(func(fd uintptr) {
		s := int(fd)
		st.KeepAlive = get(s, unix.SOL_SOCKET, unix.SO_KEEPALIVE, "SO_KEEPALIVE") != 0
		st.KeepAliveIdle = time.Duration(get(s, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, "TCP_KEEPIDLE")) * time.Second
		st.KeepAliveInterval = time.Duration(get(s, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, "TCP_KEEPINTVL")) * time.Second
		st.KeepAliveCount = get(s, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, "TCP_KEEPCNT")
		st.UserTimeout = time.Duration(get(s, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT")) * time.Millisecond
		st.NoDelay = get(s, unix.IPPROTO_TCP, unix.TCP_NODELAY, "TCP_NODELAY") != 0
		st.ReadBuffer = get(s, unix.SOL_SOCKET, unix.SO_RCVBUF, "SO_RCVBUF")
		st.WriteBuffer = get(s, unix.SOL_SOCKET, unix.SO_SNDBUF, "SO_SNDBUF")
		ti, err := unix.GetsockoptTCPInfo(s, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			if gerr == nil {
				gerr = fmt.Errorf("tune: getsockopt TCP_INFO: %w", err)
			}
			return
		}
		st.State = TCPState(ti.State)
		st.RTT = time.Duration(ti.Rtt) * time.Microsecond
		st.RTTVar = time.Duration(ti.Rttvar) * time.Microsecond
		st.Retransmits = int(ti.Retransmits)
		st.TotalRetransmits = ti.Total_retrans
		st.Probes = int(ti.Probes)
		st.Unacked = ti.Unacked
		st.Lost = ti.Lost
		st.BytesAcked = ti.Bytes_acked
		st.BytesReceived = ti.Bytes_received
		st.SynData = ti.Options&tcpiOptSynData != 0
		if st.State == stateListen {
			// tcp_get_info reports the accept queue in these two fields.
			st.Backlog, st.Queued = ti.Sacked, ti.Unacked
			st.Unacked = 0
		}
	})
	if err != nil {
		return SocketState{}, fmt.Errorf("tune: %w", err)
	}
	return st, gerr
}

// tcpState reads the socket's TCP state alone, from TCP_INFO.
func tcpState(rc syscall.RawConn) (TCPState, error) {
	var st TCPState
	var gerr error
	err := rc.Control(func(fd uintptr) {
		ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			gerr = fmt.Errorf("tune: getsockopt TCP_INFO: %w", err)
			return
		}
		st = TCPState(ti.State)
	})
	if err != nil {
		return 0, fmt.Errorf("tune: %w", err)
	}
	return st, gerr
}

// peek is Unread's recv: data or EOF (0 bytes) is unread; EAGAIN is none.
func (s *Socket) peek() (bool, error) {
	s.unread, s.err = false, nil
	if err := s.rc.Control(s.peekFn); err != nil {
		return false, fmt.Errorf("tune: %w", err)
	}
	return s.unread, s.err
}

// peekFD is recv(MSG_PEEK|MSG_DONTWAIT) of one byte into s.b, without
// asking for the peer's address (unix.Recvfrom allocates one).
func (s *Socket) peekFD(fd uintptr) {
	for {
		n, _, errno := syscall.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&s.b[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
		case errno != 0:
			s.err = fmt.Errorf("tune: recv MSG_PEEK: %w", errno)
			s.unread = true // a reset: no more use than an EOF
		default:
			s.unread = int(n) >= 0
		}
		return
	}
}

// tcpiOptSynData is TCPI_OPT_SYN_DATA from include/uapi/linux/tcp.h, which
// golang.org/x/sys/unix does not define.
const tcpiOptSynData = 0x20

const stateListen TCPState = 10

// userTimeoutSupported: Linux has TCP_USER_TIMEOUT.
const userTimeoutSupported = true
