package tune_test

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fastserve/fastserve/tune"
)

// sysctl reads an integer sysctl, skipping the test where there is no
// /proc/sys.
func sysctl(t testing.TB, name string) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads Linux sysctls from /proc/sys")
	}
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	require.NoError(t, err)
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return v
}

func skipUnlessLinux(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("Inspect reads socket options on Linux only")
	}
}

func listen(t testing.TB, network, addr string, o tune.Options) net.Listener {
	t.Helper()
	ln, err := tune.Listen(network, addr, o)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// connect dials ln, writes one byte (so deferred accept lets it through),
// and returns both ends.
func connect(t testing.TB, ln net.Listener) (server, client net.Conn) {
	t.Helper()
	client, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	_, err = client.Write([]byte{'x'})
	require.NoError(t, err)
	server = accept(t, ln, 5*time.Second)
	return server, client
}

func accept(t testing.TB, ln net.Listener, within time.Duration) net.Conn {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(within):
		ln.Close()
		t.Fatalf("no connection accepted within %v", within)
		return nil
	}
}

func inspect(t testing.TB, c net.Conn) tune.SocketState {
	t.Helper()
	st, err := tune.Inspect(c)
	require.NoError(t, err)
	return st
}

// keepAlive is the keep-alive part of a SocketState.
type keepAlive struct {
	On              bool
	Idle, Interval  time.Duration
	Count           int
	UserTimeout     time.Duration
	NoDelay         bool
	ReadBuf, SndBuf int
}

func optionsOf(st tune.SocketState) keepAlive {
	return keepAlive{st.KeepAlive, st.KeepAliveIdle, st.KeepAliveInterval, st.KeepAliveCount,
		st.UserTimeout, st.NoDelay, st.ReadBuffer, st.WriteBuffer}
}

func TestListenAppliesOptions(t *testing.T) {
	skipUnlessLinux(t)

	// What net.Listen gives an accepted connection: the zero Options must
	// give the same.
	plain, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { plain.Close() })
	srv, _ := connect(t, plain)
	netListen := inspect(t, srv)
	require.True(t, netListen.KeepAlive)
	require.Equal(t, 15*time.Second, netListen.KeepAliveIdle, "Go's default keep-alive idle")

	ka := func(idle, intvl time.Duration, n int) net.KeepAliveConfig {
		return net.KeepAliveConfig{Enable: true, Idle: idle, Interval: intvl, Count: n}
	}
	for _, tc := range []struct {
		name string
		o    tune.Options
		want func(st *keepAlive) // changes netListen's values to the expected ones
	}{
		{"zero is net.Listen", tune.Options{}, func(*keepAlive) {}},
		{"default", tune.Default(), func(k *keepAlive) {
			k.Idle, k.Interval, k.Count, k.UserTimeout = 60*time.Second, 10*time.Second, 5, 110*time.Second
		}},
		// The user timeout follows keep-alive: Idle + Interval×Count.
		{"keep-alive", tune.Options{KeepAlive: ka(7*time.Second, 3*time.Second, 4)}, func(k *keepAlive) {
			k.Idle, k.Interval, k.Count, k.UserTimeout = 7*time.Second, 3*time.Second, 4, 19*time.Second
		}},
		{"keep-alive unset fields take Go's defaults", tune.Options{KeepAlive: ka(30*time.Second, 0, 0)}, func(k *keepAlive) {
			k.Idle, k.Interval, k.Count, k.UserTimeout = 30*time.Second, 15*time.Second, 9, 165*time.Second
		}},
		{"default with keep-alive changed", func() tune.Options {
			o := tune.Default()
			o.KeepAlive = ka(time.Second, time.Second, 2)
			return o
		}(), func(k *keepAlive) {
			k.Idle, k.Interval, k.Count, k.UserTimeout = time.Second, time.Second, 2, 3*time.Second
		}},
		{"keep-alive, user timeout off", tune.Options{KeepAlive: ka(7*time.Second, 3*time.Second, 4), UserTimeout: -1}, func(k *keepAlive) {
			k.Idle, k.Interval, k.Count = 7*time.Second, 3*time.Second, 4
		}},
		{"keep-alive off", tune.Options{DisableKeepAlive: true}, func(k *keepAlive) { k.On = false }},
		{"user timeout", tune.Options{UserTimeout: 2500 * time.Millisecond}, func(k *keepAlive) {
			k.UserTimeout = 2500 * time.Millisecond
		}},
		{"no delay", tune.Options{NoDelay: true}, func(*keepAlive) {}},
		{"buffers", tune.Options{ReadBuffer: 64 << 10, WriteBuffer: 32 << 10}, func(k *keepAlive) {
			k.ReadBuf, k.SndBuf = 128<<10, 64<<10 // the kernel doubles what is set
		}},
		{"everything", tune.Options{
			ReusePort: true, DeferAccept: true, Backlog: 64, KeepAlive: ka(20*time.Second, 2*time.Second, 3),
			UserTimeout: 26 * time.Second, NoDelay: true, ReadBuffer: 16 << 10, WriteBuffer: 16 << 10,
		}, func(k *keepAlive) {
			k.Idle, k.Interval, k.Count, k.UserTimeout = 20*time.Second, 2*time.Second, 3, 26*time.Second
			k.ReadBuf, k.SndBuf = 32<<10, 32<<10
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := optionsOf(netListen)
			tc.want(&want)
			ln := listen(t, "tcp4", "127.0.0.1:0", tc.o)
			for i := range 3 {
				srv, _ := connect(t, ln)
				assert.IsType(t, (*net.TCPConn)(nil), srv)
				assert.Equal(t, want, optionsOf(inspect(t, srv)), "connection %d", i)
			}
			assert.Equal(t, tune.Stats{Accepted: 3}, ln.(*tune.Listener).Stats())
		})
	}
}

func TestApply(t *testing.T) {
	skipUnlessLinux(t)
	plain, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { plain.Close() })
	srv, _ := connect(t, plain)

	o := tune.Options{
		KeepAlive:   net.KeepAliveConfig{Enable: true, Idle: 45 * time.Second, Interval: 5 * time.Second, Count: 6},
		UserTimeout: 75 * time.Second, NoDelay: true, ReadBuffer: 8 << 10, WriteBuffer: 12 << 10,
	}
	require.NoError(t, tune.Apply(srv.(*net.TCPConn), o))
	assert.Equal(t, keepAlive{true, 45 * time.Second, 5 * time.Second, 6, 75 * time.Second, true, 16 << 10, 24 << 10},
		optionsOf(inspect(t, srv)))

	require.NoError(t, tune.Apply(srv.(*net.TCPConn), tune.Options{DisableKeepAlive: true}))
	assert.False(t, inspect(t, srv).KeepAlive)

	err = tune.Apply(srv.(*net.TCPConn), tune.Options{UserTimeout: 1500 * time.Microsecond})
	assert.EqualError(t, err, "tune: UserTimeout must be a whole number of milliseconds from 1ms to 596h31m23.647s, 0 to derive it from KeepAlive, or negative for off, got 1.5ms")
}

func getsockopt(t testing.TB, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var v int
	var gerr error
	require.NoError(t, rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }))
	require.NoError(t, gerr)
	return v
}

func TestListenerSocket(t *testing.T) {
	skipUnlessLinux(t)
	somaxconn := uint32(sysctl(t, "net.core.somaxconn"))
	for _, tc := range []struct {
		name        string
		o           tune.Options
		reuse       bool
		deferAccept bool
		backlog     uint32
	}{
		{"zero", tune.Options{}, false, false, somaxconn},
		{"default", tune.Default(), true, true, somaxconn},
		{"backlog", tune.Options{Backlog: 37}, false, false, 37},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t, "tcp4", "127.0.0.1:0", tc.o).(*tune.Listener)
			assert.Equal(t, tc.reuse, getsockopt(t, ln, unix.SOL_SOCKET, unix.SO_REUSEPORT) != 0, "SO_REUSEPORT")
			assert.Equal(t, tc.deferAccept, getsockopt(t, ln, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT) != 0, "TCP_DEFER_ACCEPT")
			st, err := tune.InspectListener(ln)
			require.NoError(t, err)
			assert.Equal(t, "LISTEN", st.State.String())
			assert.Equal(t, tc.backlog, st.Backlog)
		})
	}
}

func TestReusePort(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0", tune.Options{ReusePort: true})
	second, err := tune.Listen("tcp4", ln.Addr().String(), tune.Options{ReusePort: true})
	require.NoError(t, err, "a second SO_REUSEPORT listener on the same port")
	second.Close()

	plain := listen(t, "tcp4", "127.0.0.1:0", tune.Options{})
	_, err = tune.Listen("tcp4", plain.Addr().String(), tune.Options{ReusePort: true})
	assert.ErrorContains(t, err, "address already in use")
}

func TestDeferAccept(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_DEFER_ACCEPT is Linux only")
	}
	for _, deferAccept := range []bool{false, true} {
		t.Run("defer="+strconv.FormatBool(deferAccept), func(t *testing.T) {
			ln := listen(t, "tcp4", "127.0.0.1:0", tune.Options{DeferAccept: deferAccept})
			silent, err := net.Dial("tcp4", ln.Addr().String())
			require.NoError(t, err)
			defer silent.Close()

			tl := ln.(*tune.Listener)
			require.NoError(t, tl.SetDeadline(time.Now().Add(300*time.Millisecond)))
			c, err := tl.Accept()
			if !deferAccept {
				require.NoError(t, err, "a silent connection is accepted at once")
				c.Close()
				return
			}
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "a silent connection waits in the kernel: got %v", err)

			_, err = silent.Write([]byte("hello"))
			require.NoError(t, err)
			require.NoError(t, tl.SetDeadline(time.Now().Add(5*time.Second)))
			c, err = tl.Accept()
			require.NoError(t, err, "the connection is accepted once its first bytes arrive")
			defer c.Close()
			buf := make([]byte, 5)
			_, err = io.ReadFull(c, buf)
			require.NoError(t, err)
			assert.Equal(t, "hello", string(buf))
		})
	}
}

func TestListenNetworks(t *testing.T) {
	v6 := hasIPv6Loopback()
	for _, tc := range []struct {
		network, addr string
		reach         []string // hosts a client can reach it on
		needV6        bool
	}{
		{"tcp4", "127.0.0.1:0", []string{"127.0.0.1"}, false},
		{"tcp", "127.0.0.1:0", []string{"127.0.0.1"}, false},
		{"tcp", "localhost:0", []string{"127.0.0.1"}, false},
		{"tcp6", "[::1]:0", []string{"::1"}, true},
		{"tcp", "[::1]:0", []string{"::1"}, true},
		{"tcp", ":0", []string{"127.0.0.1", "::1"}, true},
		{"tcp", "0.0.0.0:0", []string{"127.0.0.1", "::1"}, true},
	} {
		t.Run(tc.network+"/"+tc.addr, func(t *testing.T) {
			if tc.needV6 && !v6 {
				t.Skip("no IPv6 loopback here")
			}
			ln := listen(t, tc.network, tc.addr, tune.Options{ReusePort: true})
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			for _, host := range tc.reach {
				c, err := net.Dial("tcp", net.JoinHostPort(host, port))
				require.NoError(t, err, "dial %s", host)
				_, err = c.Write([]byte{1})
				require.NoError(t, err)
				srv := accept(t, ln, 5*time.Second)
				assert.Equal(t, c.LocalAddr().(*net.TCPAddr).Port, srv.RemoteAddr().(*net.TCPAddr).Port)
				c.Close()
			}
		})
	}
}

func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestListenGroupSpreads shows the kernel's SO_REUSEPORT hash spreading
// connections over the listeners of a group.
func TestListenGroupSpreads(t *testing.T) {
	const n, conns = 3, 300
	lns, err := tune.ListenGroup("tcp4", "127.0.0.1:0", n, tune.Options{})
	require.NoError(t, err)
	require.Len(t, lns, n)
	port := lns[0].Addr().(*net.TCPAddr).Port
	for _, ln := range lns {
		defer ln.Close()
		assert.Equal(t, port, ln.Addr().(*net.TCPAddr).Port, "one port for the group")
	}

	counts := make([]int, n)
	var wg sync.WaitGroup
	for i, ln := range lns {
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				counts[i]++
				c.Close()
			}
		})
	}
	for range conns {
		c, err := net.Dial("tcp4", lns[0].Addr().String())
		require.NoError(t, err)
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	var total tune.Stats
	for time.Now().Before(deadline) {
		total = tune.Stats{}
		for _, ln := range lns {
			total = total.Add(ln.(*tune.Listener).Stats())
		}
		if total.Accepted == conns {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
	t.Logf("connections per listener: %v", counts)
	assert.Equal(t, uint64(conns), total.Accepted)
	for i, c := range counts {
		// A fair hash gives each about 100; below 50 has odds under 1e-9.
		assert.GreaterOrEqual(t, c, conns/n/2, "listener %d accepted too few", i)
	}
}

func TestCloseEndsAccept(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0", tune.Default())
	errc := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, ln.Close())
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

// TestFileListener shows that a listener made from a passed descriptor is
// the same socket: a connection queued before the original is closed is
// accepted through the copy, with the options set.
func TestFileListener(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads socket options back with Linux getsockopt")
	}
	o := tune.Default()
	o.DeferAccept = false // the connection queues without sending
	ln, err := tune.Listen("tcp4", "127.0.0.1:0", o)
	require.NoError(t, err)
	orig := ln.(*tune.Listener)
	f, err := orig.File()
	require.NoError(t, err)
	c, err := net.Dial("tcp4", orig.Addr().String()) // queued, not accepted
	require.NoError(t, err)
	defer c.Close()

	cp, err := tune.FileListener(f, o)
	require.NoError(t, err)
	f.Close()
	defer cp.Close()
	require.NoError(t, orig.Close()) // the copy keeps the socket and its queue

	require.NoError(t, cp.SetDeadline(time.Now().Add(5*time.Second)))
	sc, err := cp.AcceptTCP()
	require.NoError(t, err, "the connection queued before the original closed")
	defer sc.Close()
	require.Equal(t, c.LocalAddr().String(), sc.RemoteAddr().String())
	st, err := tune.Inspect(sc)
	require.NoError(t, err)
	require.Equal(t, o.KeepAlive.Idle, st.KeepAliveIdle)
	require.Equal(t, o.EffectiveUserTimeout(), st.UserTimeout)
}

func TestFileListenerNotTCP(t *testing.T) {
	u, err := net.Listen("unix", t.TempDir()+"/s")
	require.NoError(t, err)
	defer u.Close()
	f, err := u.(*net.UnixListener).File()
	require.NoError(t, err)
	defer f.Close()
	_, err = tune.FileListener(f, tune.Default())
	require.ErrorContains(t, err, "not TCP")
}
