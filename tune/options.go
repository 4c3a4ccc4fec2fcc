package tune

import (
	"errors"
	"fmt"
	"math"
	"net"
	"time"
)

// Options says how a listening socket is built and which TCP options every
// connection it accepts carries. The zero value behaves like [net.Listen]:
// no SO_REUSEPORT, no deferred accept, the kernel's backlog, and on each
// connection Go's own defaults (TCP_NODELAY on; keep-alive on with 15 s idle,
// 15 s interval, 9 probes). [Default] gives the settings recommended for a
// server with many long-lived keep-alive connections.
type Options struct {
	// ReusePort sets SO_REUSEPORT on the listening socket, so that several
	// sockets (in this process or in a new one taking over) can listen on
	// the same address and the kernel spreads connections among them.
	ReusePort bool

	// DeferAccept sets TCP_DEFER_ACCEPT: the kernel hands a connection to
	// Accept only once the client's first bytes have arrived. Suits
	// protocols where the client speaks first, as TLS does.
	DeferAccept bool

	// FastOpen sets TCP_FASTOPEN (queue length 16384, which the kernel
	// caps at the backlog) on the listening
	// socket, so clients holding a cookie can send data in their SYN. The
	// host must allow server-side Fast Open (bit 0x2 of
	// net.ipv4.tcp_fastopen); Listen fails if it does not.
	FastOpen bool

	// Backlog is the length of the queue of connections that completed the
	// handshake but have not been accepted. If zero, the kernel's
	// net.core.somaxconn is used; larger values are rejected, because the
	// kernel would silently cut them to somaxconn.
	Backlog int

	// KeepAlive sets TCP keep-alive on each accepted connection. If
	// KeepAlive is the zero value, connections keep Go's default (on, 15 s
	// idle, 15 s interval, 9 probes). If Enable is true, Idle and Interval
	// are whole seconds from 1 s to 32767 s and Count is from 1 to 127; a
	// zero field takes Go's default for it. If Enable is false, the other
	// fields must be zero. A peer that vanished is detected, and its
	// connection's reads fail, Idle + Interval×Count after the last segment
	// received from it, unless data is waiting to be acknowledged: see
	// UserTimeout.
	KeepAlive net.KeepAliveConfig

	// DisableKeepAlive turns TCP keep-alive off (SO_KEEPALIVE=0) on each
	// accepted connection. KeepAlive must then be zero.
	DisableKeepAlive bool

	// UserTimeout sets TCP_USER_TIMEOUT: how long sent data may stay
	// unacknowledged before the kernel drops the connection (counted from
	// the first retransmission, so it fires one retransmission timeout,
	// 200 ms or more, after that). Keep-alive probes are not sent while
	// data is outstanding, so without it a peer that vanished while a
	// response was in flight holds the socket for about 15 minutes (the
	// kernel's tcp_retries2). With keep-alive on, the kernel also uses it
	// instead of Count to give up on an idle peer: it closes the
	// connection at the first probe due once UserTimeout has passed (see
	// DeadPeerAfter), so a user timeout that differs from Idle +
	// Interval×Count changes when a vanished idle peer is found.
	//
	// If zero, it is derived from KeepAlive when KeepAlive.Enable is set:
	// Idle + Interval×Count (Go's defaults for zero fields), so that a
	// vanished peer is found on the same bound with or without data in
	// flight, and the keep-alive settings mean what they say. With
	// KeepAlive not enabled, zero leaves the kernel default (off). A
	// negative value turns it off explicitly. Whole milliseconds, up to
	// 2^31-1 ms. Linux only; elsewhere only an explicit value is refused,
	// and none is derived.
	UserTimeout time.Duration

	// NoDelay sets TCP_NODELAY (Nagle's algorithm off) on each accepted
	// connection. False leaves the socket as Go made it, and Go turns
	// TCP_NODELAY on for every TCP connection it creates: Nagle's algorithm
	// together with delayed ACKs stalls request/response traffic by up to
	// 40 ms, so Options offers no way to turn it on.
	NoDelay bool

	// ReadBuffer and WriteBuffer set SO_RCVBUF and SO_SNDBUF in bytes. If
	// zero, the kernel sizes the buffers itself (net.ipv4.tcp_rmem and
	// tcp_wmem) and grows them with the connection's needs; a fixed size
	// turns that autotuning off. The kernel doubles the value for its own
	// bookkeeping, and Inspect reports the doubled value. Values above
	// net.core.rmem_max or wmem_max are rejected, because the kernel would
	// silently cut them.
	ReadBuffer  int
	WriteBuffer int
}

// Default returns the settings recommended for an HTTPS server holding many
// long-lived keep-alive connections, often behind load balancers and NAT
// that forget idle flows:
//
//   - ReusePort: a new process can bind the same address while the old one
//     drains (a zero-downtime hand-over), and [ListenGroup] can spread
//     accepts over cores.
//   - DeferAccept: TLS clients speak first, so a connection reaches Accept
//     (and costs a goroutine and TLS state) only once its ClientHello has
//     arrived; connect-only scanners never do.
//   - FastOpen off: browsers no longer send TFO SYNs, middleboxes drop them,
//     and it needs a host sysctl that most hosts lack.
//   - Backlog 0: the kernel's somaxconn, which is 4096 on current kernels.
//   - KeepAlive on, 60 s idle, 10 s interval, 5 probes: the first probe goes
//     out well before the shortest idle timeout common balancers and NATs
//     publish (Azure Load Balancer's 4 minutes; AWS NLB and NAT Gateway
//     350 s), so they never forget a live connection, and a peer that
//     vanished is found within 110 s instead of Go's 150 s or the
//     kernel's 2 h 11 min.
//   - UserTimeout 0: derived from KeepAlive, Idle + Interval×Count
//     (110 s), so a peer that vanishes while a response is in flight is
//     dropped on the same bound as an idle one, and changing KeepAlive
//     moves both bounds.
//   - NoDelay: responses go out as soon as they are written.
//   - ReadBuffer and WriteBuffer 0: the kernel's autotuning keeps idle
//     connections small and grows busy ones, which fixed sizes would undo
//     at 10,000 connections.
func Default() Options {
	return Options{
		ReusePort:   true,
		DeferAccept: true,
		KeepAlive: net.KeepAliveConfig{
			Enable:   true,
			Idle:     60 * time.Second,
			Interval: 10 * time.Second,
			Count:    5,
		},
		NoDelay: true,
	}
}

// An OptionError reports an Options field whose value is out of range, or
// that this platform or host cannot apply.
type OptionError struct {
	Field   string // the field, as in "KeepAlive.Idle"
	Value   any    // the value given
	Allowed string // what the field accepts, or why the value cannot work
	Err     error  // the cause, such as errors.ErrUnsupported, or nil
}

func (e *OptionError) Error() string {
	if errors.Is(e.Err, errors.ErrUnsupported) {
		return fmt.Sprintf("tune: %s is not supported %s", e.Field, e.Allowed)
	}
	return fmt.Sprintf("tune: %s must be %s, got %v", e.Field, e.Allowed, e.Value)
}

func (e *OptionError) Unwrap() error { return e.Err }

// Kernel limits on the socket options (include/net/tcp.h).
const (
	maxKeepIdle    = 32767 * time.Second
	maxKeepCount   = 127
	maxUserTimeout = math.MaxInt32 * time.Millisecond
)

// Validate reports every field of o that is out of range, or that this
// platform or host cannot apply, as *OptionError values joined with
// [errors.Join]. [Listen] and [ListenGroup] call it; the host's limits
// (somaxconn, tcp_fastopen) are read from the network namespace of the
// calling thread, rmem_max and wmem_max once per process.
func (o Options) Validate() error { return o.check(true) }

// check validates o for a listener, or only the per-connection fields when
// listener is false.
func (o Options) check(listener bool) error {
	var errs []error
	bad := func(field string, value any, allowed string) {
		errs = append(errs, &OptionError{Field: field, Value: value, Allowed: allowed})
	}

	ka := o.KeepAlive
	switch {
	case o.DisableKeepAlive && ka != (net.KeepAliveConfig{}):
		bad("KeepAlive", fmtKeepAlive(ka), "zero when DisableKeepAlive is set")
	case !ka.Enable:
		for _, f := range []struct {
			name string
			set  bool
			v    any
		}{
			{"KeepAlive.Idle", ka.Idle != 0, ka.Idle},
			{"KeepAlive.Interval", ka.Interval != 0, ka.Interval},
			{"KeepAlive.Count", ka.Count != 0, ka.Count},
		} {
			if f.set {
				bad(f.name, f.v, "zero when KeepAlive.Enable is false (set Enable to use it)")
			}
		}
	default:
		const secs = "a whole number of seconds from 1s to 32767s, or 0 for 15s"
		for _, f := range []struct {
			name string
			d    time.Duration
		}{{"KeepAlive.Idle", ka.Idle}, {"KeepAlive.Interval", ka.Interval}} {
			if f.d != 0 && (f.d < time.Second || f.d > maxKeepIdle || f.d%time.Second != 0) {
				bad(f.name, f.d, secs)
			}
		}
		if ka.Count < 0 || ka.Count > maxKeepCount {
			bad("KeepAlive.Count", ka.Count, "from 1 to 127, or 0 for 9")
		}
	}

	if o.UserTimeout > maxUserTimeout || (o.UserTimeout > 0 && o.UserTimeout%time.Millisecond != 0) {
		bad("UserTimeout", o.UserTimeout, "a whole number of milliseconds from 1ms to 596h31m23.647s, 0 to derive it from KeepAlive, or negative for off")
	}
	if listener && o.Backlog < 0 {
		bad("Backlog", o.Backlog, "0 (the kernel's somaxconn) or more")
	}
	if o.ReadBuffer < 0 {
		bad("ReadBuffer", o.ReadBuffer, "0 (kernel autotuning) or more bytes")
	}
	if o.WriteBuffer < 0 {
		bad("WriteBuffer", o.WriteBuffer, "0 (kernel autotuning) or more bytes")
	}
	errs = append(errs, o.platformErrors(listener)...)
	return errors.Join(errs...)
}

func fmtKeepAlive(ka net.KeepAliveConfig) string {
	return fmt.Sprintf("{Enable:%t Idle:%v Interval:%v Count:%d}", ka.Enable, ka.Idle, ka.Interval, ka.Count)
}
