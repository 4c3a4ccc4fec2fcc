package tune_test

import (
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/internal/netnstest"
	"github.com/fastserve/fastserve/tune"
)

// TestHalfOpenPeer makes the client end of established, idle connections
// between two network namespaces vanish, without a FIN or an RST reaching
// the server, and checks that the keep-alive and TCP_USER_TIMEOUT that tune
// sets make the server's blocked read fail with ETIMEDOUT within their
// bounds, while connections without them stay blocked. All cases share one
// vanishing, so the test takes about 5 s.
func TestHalfOpenPeer(t *testing.T) {
	p := netnstest.New(t)

	const margin = 1500 * time.Millisecond
	fast := net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 2}
	const userTimeout = 2 * time.Second
	// Keep-alive gives up Idle + Interval×Count after the last segment
	// received, which came just before the client vanished, plus the
	// kernel's timer slack (about 20 ms a probe).
	keepAliveBound := fast.Idle + fast.Interval*time.Duration(fast.Count) + margin
	userTimeoutBound := userTimeout + margin
	// The controls must still be blocked once every bound has passed.
	controlsAt := max(keepAliveBound, userTimeoutBound)

	goDefault := tune.SocketState{KeepAlive: true, KeepAliveIdle: 15 * time.Second, KeepAliveInterval: 15 * time.Second, KeepAliveCount: 9}
	// A keep-alive given without a user timeout brings its own: Idle +
	// Interval×Count.
	fastState := tune.SocketState{KeepAlive: true, KeepAliveIdle: time.Second, KeepAliveInterval: time.Second, KeepAliveCount: 2,
		UserTimeout: 3 * time.Second}
	fastNoUT := fastState
	fastNoUT.UserTimeout = 0
	userTimeoutState := goDefault
	userTimeoutState.UserTimeout = userTimeout
	// An explicit user timeout shorter than Idle + Interval×Count (1 + 1×5
	// s) replaces the count: the connection goes at the first probe due
	// once it has passed (DeadPeerAfter).
	overridden := tune.Options{KeepAlive: net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 5}, UserTimeout: userTimeout}
	overriddenState := tune.SocketState{KeepAlive: true, KeepAliveIdle: time.Second, KeepAliveInterval: time.Second, KeepAliveCount: 5,
		UserTimeout: userTimeout}

	cases := []struct {
		name string
		opts tune.Options
		want tune.SocketState // the keep-alive and user-timeout fields Inspect must read back
		// write makes the server send 64 KiB once the client has vanished,
		// so that data is waiting to be acknowledged when it reads.
		write bool
		// A case that must detect the vanished peer fails its read (or
		// write) with ETIMEDOUT between min and max after the client
		// vanished; a control (max zero) is still blocked at controlsAt.
		min, max time.Duration
	}{
		{name: "keepalive", opts: tune.Options{KeepAlive: fast}, want: fastState,
			min: fast.Idle + fast.Interval, max: keepAliveBound},
		{name: "go-default", opts: tune.Options{}, want: goDefault},
		// Go's default keep-alive (15 s idle) cannot fire within the bound,
		// so only TCP_USER_TIMEOUT can end this one. The kernel counts it
		// from the first retransmission, one RTO (at least 200 ms) after
		// the data went out.
		{name: "user-timeout", opts: tune.Options{UserTimeout: userTimeout}, want: userTimeoutState, write: true,
			min: userTimeout, max: userTimeoutBound},
		// Keep-alive alone frees a socket with data in flight too, through
		// the user timeout derived from it.
		{name: "keepalive-unacked", opts: tune.Options{KeepAlive: fast}, want: fastState, write: true,
			min: fastState.UserTimeout, max: keepAliveBound},
		{name: "keepalive-overridden", opts: overridden, want: overriddenState,
			min: overridden.DeadPeerAfter(), max: overridden.DeadPeerAfter() + margin},
		// Keep-alive sends no probe while data is unacknowledged: with the
		// user timeout turned off, nothing frees the socket. The case
		// TCP_USER_TIMEOUT exists for.
		{name: "unacked-no-user-timeout", opts: tune.Options{KeepAlive: fast, UserTimeout: -1}, want: fastNoUT, write: true},
	}

	lns := make([]net.Listener, len(cases))
	require.NoError(t, p.Do(p.A, func() error {
		for i, tc := range cases {
			ln, err := tune.Listen("tcp4", netnstest.AddrA+":0", tc.opts)
			if err != nil {
				return fmt.Errorf("%s: %w", tc.name, err)
			}
			t.Cleanup(func() { ln.Close() })
			lns[i] = ln
		}
		return nil
	}))
	clients := make([]net.Conn, len(cases))
	require.NoError(t, p.Do(p.B, func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		for i, ln := range lns {
			c, err := d.Dial("tcp4", ln.Addr().String())
			if err != nil {
				return fmt.Errorf("%s: %w", cases[i].name, err)
			}
			t.Cleanup(func() { c.Close() })
			clients[i] = c
		}
		return nil
	}))

	servers := make([]net.Conn, len(cases))
	for i, tc := range cases {
		servers[i] = acceptAndExchange(t, lns[i].(*tune.Listener), clients[i])
		st, err := tune.Inspect(servers[i])
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, tune.SocketState{
			KeepAlive:         st.KeepAlive,
			KeepAliveIdle:     st.KeepAliveIdle,
			KeepAliveInterval: st.KeepAliveInterval,
			KeepAliveCount:    st.KeepAliveCount,
			UserTimeout:       st.UserTimeout,
		}, "%s: options the kernel holds", tc.name)
	}

	p.Vanish(t, p.B)
	gone := time.Now()

	type result struct {
		op    string
		err   error
		after time.Duration // since the client vanished
	}
	done := make([]chan result, len(cases))
	for i, tc := range cases {
		ch := make(chan result, 1)
		done[i] = ch
		c := servers[i]
		go func() {
			if tc.write {
				if _, err := c.Write(make([]byte, 64<<10)); err != nil {
					ch <- result{"write", err, time.Since(gone)}
					return
				}
			}
			_, err := c.Read(make([]byte, 1))
			ch <- result{"read", err, time.Since(gone)}
		}()
	}

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.max == 0 {
				time.Sleep(time.Until(gone.Add(controlsAt)))
				st, err := tune.Inspect(servers[i])
				require.NoError(t, err)
				if r, ok := await(done[i], time.Time{}); ok {
					assert.Failf(t, "control detected the vanished peer", "%s failed %v after the client vanished: %v", r.op, r.after, r.err)
					return
				}
				t.Logf("still blocked %v after the client vanished: state %v, unacked %d, retransmits %d, keep-alive probes %d",
					time.Since(gone).Round(time.Millisecond), st.State, st.Unacked, st.TotalRetransmits, st.Probes)
				assert.Equal(t, established, st.State)
				if tc.write {
					assert.NotZero(t, st.Unacked, "the control needs data waiting to be acknowledged")
				}
				return
			}
			r, ok := await(done[i], gone.Add(tc.max))
			if !ok {
				st, _ := tune.Inspect(servers[i])
				assert.Failf(t, "vanished peer not detected", "still blocked %v after the client vanished (bound %v): %+v", time.Since(gone), tc.max, st)
				return
			}
			t.Logf("%s failed %v after the client vanished: %v", r.op, r.after.Round(time.Millisecond), r.err)
			assert.ErrorIs(t, r.err, syscall.ETIMEDOUT)
			assert.GreaterOrEqual(t, r.after, tc.min, "detected before the configured timeout")
			assert.LessOrEqual(t, r.after, tc.max)
		})
	}
}

// await returns what ch holds, or waits for it until deadline; with a
// deadline in the past (the zero Time) it does not wait. What ch already
// holds is returned even after the deadline, as the checks run one after
// another and an earlier one may have waited past it.
func await[T any](ch <-chan T, deadline time.Time) (T, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case v := <-ch:
		return v, true
	case <-timer.C:
		var zero T
		return zero, false
	}
}

// established is TCP_ESTABLISHED (include/net/tcp_states.h).
const established tune.TCPState = 1

// acceptAndExchange accepts the connection client made to ln, sends one
// message each way, and waits until the server has nothing unacknowledged,
// so that the connection is established and idle. It returns the server's
// end, with no deadline set.
func acceptAndExchange(t testing.TB, ln *tune.Listener, client net.Conn) net.Conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	require.NoError(t, ln.SetDeadline(deadline))
	server, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { server.Close() })

	require.NoError(t, server.SetDeadline(deadline))
	require.NoError(t, client.SetDeadline(deadline))
	buf := make([]byte, 4)
	_, err = client.Write([]byte("ping"))
	require.NoError(t, err)
	_, err = io.ReadFull(server, buf)
	require.NoError(t, err)
	_, err = server.Write([]byte("pong"))
	require.NoError(t, err)
	_, err = io.ReadFull(client, buf)
	require.NoError(t, err)
	require.NoError(t, server.SetDeadline(time.Time{}))
	require.NoError(t, client.SetDeadline(time.Time{}))

	require.Eventually(t, func() bool {
		st, err := tune.Inspect(server)
		return err == nil && st.State == established && st.Unacked == 0
	}, 2*time.Second, 5*time.Millisecond, "server still has data unacknowledged")
	return server
}
