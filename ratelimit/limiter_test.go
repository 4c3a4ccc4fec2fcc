package ratelimit_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/ratelimit"
)

func newLimiter(t testing.TB, rate string, burst int, tweak ...func(*ratelimit.Config)) *ratelimit.Limiter {
	t.Helper()
	r, err := ratelimit.ParseRate(rate)
	require.NoError(t, err)
	cfg := ratelimit.Config{Rate: r, Burst: burst}
	for _, f := range tweak {
		f(&cfg)
	}
	l, err := ratelimit.New(cfg)
	require.NoError(t, err)
	return l
}

var addrA = netip.MustParseAddr("192.0.2.1")

// TestParseRate: the rates a config file writes, and clear errors for
// the rest.
func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ratelimit.Rate
		err  string
	}{
		{"10/s", ratelimit.Rate{Count: 10, Per: time.Second}, ""},
		{"600/m", ratelimit.Rate{Count: 600, Per: time.Minute}, ""},
		{"1/h", ratelimit.Rate{Count: 1, Per: time.Hour}, ""},
		{"10r/s", ratelimit.Rate{Count: 10, Per: time.Second}, ""},
		{"1000000000/s", ratelimit.Rate{Count: 1e9, Per: time.Second}, ""},
		{"", ratelimit.Rate{}, `ratelimit: rate "": must be N/s, N/m or N/h, N a whole number of 1 or more (10/s, 600/m, 1/h)`},
		{"10", ratelimit.Rate{}, `rate "10": must be N/s, N/m or N/h`},
		{"0/s", ratelimit.Rate{}, "N a whole number of 1 or more"},
		{"-1/s", ratelimit.Rate{}, "N a whole number of 1 or more"},
		{"+1/s", ratelimit.Rate{}, "must be N/s"},
		{"1.5/s", ratelimit.Rate{}, "must be N/s"},
		{" 10/s", ratelimit.Rate{}, "must be N/s"},
		{"ten/s", ratelimit.Rate{}, "must be N/s"},
		{"10/d", ratelimit.Rate{}, `rate "10/d": must be N/s, N/m or N/h`},
		{"10/sec", ratelimit.Rate{}, `rate "10/sec": must be N/s`},
		{"10/S", ratelimit.Rate{}, `rate "10/S": must be N/s`},
		{"2000000000/s", ratelimit.Rate{}, `rate "2000000000/s": must be at most 1000000000/s`},
	} {
		t.Run("rate="+tc.in, func(t *testing.T) {
			got, err := ratelimit.ParseRate(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				var re *ratelimit.RateError
				if assert.ErrorAs(t, err, &re) {
					assert.Equal(t, tc.in, re.Value)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			if tc.in != "10r/s" {
				assert.Equal(t, tc.in, got.String(), "String reads back")
			}
		})
	}
	assert.Equal(t, "5/100ms", ratelimit.Rate{Count: 5, Per: 100 * time.Millisecond}.String())
	assert.Equal(t, "none", ratelimit.Rate{}.String())
}

// TestConfigValidate: each bad field is named, with its value and what
// it takes; New refuses what Validate does.
func TestConfigValidate(t *testing.T) {
	ok := ratelimit.Rate{Count: 10, Per: time.Second}
	for _, tc := range []struct {
		name string
		cfg  ratelimit.Config
		want string
	}{
		{"no rate", ratelimit.Config{}, "ratelimit: Rate must be N/s, N/m or N/h, N a whole number of 1 or more (10/s, 600/m, 1/h), got none"},
		{"zero period", ratelimit.Config{Rate: ratelimit.Rate{Count: 1}}, "ratelimit: Rate must be N/s"},
		{"negative burst", ratelimit.Config{Rate: ok, Burst: -1}, "ratelimit: Burst must be from 0 to 1000000, got -1"},
		{"huge burst", ratelimit.Config{Rate: ok, Burst: 1_000_001}, "ratelimit: Burst must be from 0 to 1000000, got 1000001"},
		{"overflowing burst", ratelimit.Config{Rate: ratelimit.Rate{Count: 1, Per: 2 * time.Hour}, Burst: 1_000_000}, "ratelimit: Burst must be at most 640511 at 1/2h0m0s, got 1000000"},
		{"header", ratelimit.Config{Rate: ok, Header: "X Api"}, `ratelimit: Header must be a header name (an RFC 9110 token, such as X-Api-Key), or empty for the client's address, got "X Api"`},
		{"ipv6 prefix", ratelimit.Config{Rate: ok, IPv6Prefix: 129}, "ratelimit: IPv6Prefix must be from 1 to 128, or 0 for 64, got 129"},
		{"max keys", ratelimit.Config{Rate: ok, MaxKeys: 7}, "ratelimit: MaxKeys must be from 8 to 16777216, or 0 for 65536, got 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var ce *ratelimit.ConfigError
			assert.True(t, errors.As(err, &ce), "a *ConfigError")
			_, err = ratelimit.New(tc.cfg)
			assert.Error(t, err)
		})
	}
	assert.NoError(t, ratelimit.Config{Rate: ok}.Validate())
	assert.NoError(t, ratelimit.Config{Rate: ok, Burst: 1_000_000, Header: "X-Api-Key", IPv6Prefix: 128, MaxKeys: 8, DryRun: true}.Validate())
}

// TestBurstThenLimited: at 10/s with a burst of 5, six requests pass at
// once and the seventh is limited, for 100 ms; one passes each 100 ms
// after, and a client idle for the burst's time has all of it again.
func TestBurstThenLimited(t *testing.T) {
	l := newLimiter(t, "10/s", 5)
	k := l.AddrKey(addrA)
	t0 := time.Now()
	for i := range 6 {
		r, wait := l.Allow(k, t0)
		require.Equal(t, ratelimit.Passed, r, "request %d of the burst", i+1)
		assert.Zero(t, wait)
	}
	r, wait := l.Allow(k, t0)
	assert.Equal(t, ratelimit.Limited, r, "past the burst")
	assert.Equal(t, 100*time.Millisecond, wait, "until the next interval")
	assert.Equal(t, int64(1), ratelimit.RetryAfter(wait))

	r, _ = l.Allow(k, t0.Add(99*time.Millisecond))
	assert.Equal(t, ratelimit.Limited, r, "before 1/rate")
	r, _ = l.Allow(k, t0.Add(100*time.Millisecond))
	assert.Equal(t, ratelimit.Passed, r, "after 1/rate: one more")
	r, wait = l.Allow(k, t0.Add(100*time.Millisecond))
	assert.Equal(t, ratelimit.Limited, r, "and no more")
	assert.Equal(t, 100*time.Millisecond, wait)

	later := t0.Add(100*time.Millisecond + 600*time.Millisecond)
	for i := range 6 {
		r, _ := l.Allow(k, later)
		assert.Equal(t, ratelimit.Passed, r, "request %d of a full burst again", i+1)
	}
	r, _ = l.Allow(k, later)
	assert.Equal(t, ratelimit.Limited, r)

	other := l.AddrKey(netip.MustParseAddr("192.0.2.2"))
	r, _ = l.Allow(other, t0)
	assert.Equal(t, ratelimit.Passed, r, "another client has its own budget")

	st := l.Stats(later)
	assert.Equal(t, ratelimit.Counts{ratelimit.Passed: 14, ratelimit.Limited: 4}, st.Counts)
	assert.Equal(t, 1, st.Keys, "the other client's time is past: it owes nothing")
	assert.Zero(t, st.Evicted)
}

// TestNoBurst: with a burst of 0, one request passes per interval.
func TestNoBurst(t *testing.T) {
	l := newLimiter(t, "1/m", 0)
	k := l.AddrKey(addrA)
	t0 := time.Now()
	r, _ := l.Allow(k, t0)
	assert.Equal(t, ratelimit.Passed, r)
	r, wait := l.Allow(k, t0.Add(time.Second))
	assert.Equal(t, ratelimit.Limited, r)
	assert.Equal(t, 59*time.Second, wait)
	assert.Equal(t, int64(59), ratelimit.RetryAfter(wait))
	r, _ = l.Allow(k, t0.Add(time.Minute))
	assert.Equal(t, ratelimit.Passed, r)
}

// TestRetryAfter: whole seconds, rounded up, at least 1.
func TestRetryAfter(t *testing.T) {
	for wait, want := range map[time.Duration]int64{
		0: 1, time.Nanosecond: 1, 100 * time.Millisecond: 1, time.Second: 1,
		time.Second + time.Nanosecond: 2, 59*time.Second + 1: 60, time.Hour: 3600,
	} {
		assert.Equal(t, want, ratelimit.RetryAfter(wait), "wait %v", wait)
	}
}

// TestUndo: a request given back leaves the budget as it was.
func TestUndo(t *testing.T) {
	l := newLimiter(t, "1/h", 1)
	k := l.AddrKey(addrA)
	t0 := time.Now()
	for range 2 {
		r, _ := l.Allow(k, t0)
		require.Equal(t, ratelimit.Passed, r)
	}
	l.Undo(k)
	r, _ := l.Allow(k, t0)
	assert.Equal(t, ratelimit.Passed, r, "the request given back is there again")
	r, _ = l.Allow(k, t0)
	assert.Equal(t, ratelimit.Limited, r)
	l.Undo(l.AddrKey(netip.MustParseAddr("192.0.2.99"))) // a key it never saw: nothing
}

// TestDryRun: a dry run says DryRunLimited where the limit would say
// Limited, and keeps the budget as the limit would: its counts are the
// limit's.
func TestDryRun(t *testing.T) {
	real := newLimiter(t, "10/s", 2)
	dry := newLimiter(t, "10/s", 2, func(c *ratelimit.Config) { c.DryRun = true })
	t0 := time.Now()
	for i, at := range []time.Duration{0, 0, 0, 0, 50 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond} {
		rr, rw := real.Allow(real.AddrKey(addrA), t0.Add(at))
		dr, dw := dry.Allow(dry.AddrKey(addrA), t0.Add(at))
		want := rr
		if rr == ratelimit.Limited {
			want = ratelimit.DryRunLimited
		}
		assert.Equal(t, want, dr, "request %d at %v", i, at)
		assert.Equal(t, rw, dw, "request %d: the same wait", i)
	}
	st := dry.Stats(t0)
	assert.Equal(t, ratelimit.Counts{ratelimit.Passed: 4, ratelimit.DryRunLimited: 3}, st.Counts)

	// Through Handler, nothing is refused.
	var served int
	h := dry.Handler(func(*fasthttp.RequestCtx) { served++ })
	for range 10 {
		var ctx fasthttp.RequestCtx
		h(&ctx)
		assert.Equal(t, fasthttp.StatusOK, ctx.Response.StatusCode())
	}
	assert.Equal(t, 10, served)
}

// TestKeys: IPv4-mapped IPv6 addresses are their IPv4 ones; IPv6 ones
// are grouped by /64 (or IPv6Prefix); a header's value keys a client
// apart from any address, and a request without it is keyed by address.
func TestKeys(t *testing.T) {
	l := newLimiter(t, "1/s", 0, func(c *ratelimit.Config) { c.Header = "X-Api-Key" })
	a := netip.MustParseAddr
	assert.Equal(t, l.AddrKey(a("192.0.2.1")), l.AddrKey(a("::ffff:192.0.2.1")), "IPv4-mapped IPv6 is IPv4")
	assert.NotEqual(t, l.AddrKey(a("192.0.2.1")), l.AddrKey(a("192.0.2.2")))
	assert.Equal(t, l.AddrKey(a("2001:db8:1:2::1")), l.AddrKey(a("2001:db8:1:2:ffff:ffff:ffff:ffff")), "one /64")
	assert.Equal(t, l.AddrKey(a("2001:db8:1:2::1")), l.AddrKey(a("2001:db8:1:2::1%eth0")), "the zone is not part of it")
	assert.NotEqual(t, l.AddrKey(a("2001:db8:1:2::1")), l.AddrKey(a("2001:db8:1:3::1")), "another /64")
	assert.NotEqual(t, l.AddrKey(a("::")), l.AddrKey(a("0.0.0.0")))
	assert.NotEqual(t, l.HeaderKey([]byte("192.0.2.1")), l.AddrKey(a("192.0.2.1")))
	assert.Equal(t, l.HeaderKey([]byte("k1")), l.HeaderKey([]byte("k1")))
	assert.NotEqual(t, l.HeaderKey([]byte("k1")), l.HeaderKey([]byte("k2")))

	each := newLimiter(t, "1/s", 0, func(c *ratelimit.Config) { c.IPv6Prefix = 128 })
	assert.NotEqual(t, each.AddrKey(a("2001:db8:1:2::1")), each.AddrKey(a("2001:db8:1:2::2")), "IPv6Prefix 128: each address")
	assert.Equal(t, each.AddrKey(a("192.0.2.1")), each.AddrKey(a("::ffff:192.0.2.1")))
	other := newLimiter(t, "1/s", 0)
	assert.NotEqual(t, l.AddrKey(a("192.0.2.1")), other.AddrKey(a("192.0.2.1")), "each limiter hashes with its own seed")

	ctx := func(ip string, key string) *fasthttp.RequestCtx {
		var c fasthttp.RequestCtx
		c.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP(ip), Port: 5000})
		if key != "" {
			c.Request.Header.Set("X-Api-Key", key)
		}
		return &c
	}
	assert.Equal(t, l.HeaderKey([]byte("k1")), l.Key(ctx("192.0.2.1", "k1")), "by the header")
	assert.Equal(t, l.Key(ctx("192.0.2.1", "k1")), l.Key(ctx("192.0.2.2", "k1")), "whatever the address")
	assert.Equal(t, l.AddrKey(a("192.0.2.1")), l.Key(ctx("192.0.2.1", "")), "no header: the address")
	assert.Equal(t, l.AddrKey(a("192.0.2.1")), l.Key(ctx("::ffff:192.0.2.1", "")))
	assert.Equal(t, other.AddrKey(a("192.0.2.1")), other.Key(ctx("192.0.2.1", "k1")), "a limiter without Header ignores it")

	// Keyed by header, one address has as many budgets as values.
	t0 := time.Now()
	for _, key := range []string{"k1", "k2", ""} {
		r, _ := l.Allow(l.Key(ctx("192.0.2.1", key)), t0)
		assert.Equal(t, ratelimit.Passed, r, "key %q", key)
	}
	r, _ := l.Allow(l.Key(ctx("192.0.2.1", "k1")), t0)
	assert.Equal(t, ratelimit.Limited, r)
}

// TestEviction: the places are bounded; a flood of new keys never gets
// a refusal for want of room, never pushes out a client held at its
// limit (it owes the most), and counts the clients that owed something
// and lost their place; idle clients give theirs for free.
func TestEviction(t *testing.T) {
	l := newLimiter(t, "1/h", 5, func(c *ratelimit.Config) { c.MaxKeys = 8; c.Header = "X-Api-Key" })
	require.Equal(t, 8, l.Config().MaxKeys)
	t0 := time.Now()
	heavy := l.AddrKey(addrA)
	for range 6 {
		r, _ := l.Allow(heavy, t0)
		require.Equal(t, ratelimit.Passed, r)
	}
	r, _ := l.Allow(heavy, t0)
	require.Equal(t, ratelimit.Limited, r)

	for i := range 1000 {
		r, _ := l.Allow(l.HeaderKey(fmt.Appendf(nil, "flood-%d", i)), t0.Add(time.Duration(i)*time.Millisecond))
		require.Equal(t, ratelimit.Passed, r, "new key %d: never refused for want of room", i)
	}
	now := t0.Add(time.Second)
	st := l.Stats(now)
	assert.Equal(t, 8, st.Keys, "every place holds a client that owes something")
	assert.Equal(t, uint64(1000-7), st.Evicted, "the flood pushed out its own keys")
	r, _ = l.Allow(heavy, now)
	assert.Equal(t, ratelimit.Limited, r, "the client held at its limit is still held")
	r, _ = l.Allow(l.AddrKey(netip.MustParseAddr("192.0.2.7")), now)
	assert.Equal(t, ratelimit.Passed, r, "a newcomer passes")

	// Two hours on, every flood key's time is past: new clients take
	// their places and nobody is counted as evicted.
	later := t0.Add(2 * time.Hour)
	before := l.Stats(later)
	assert.Equal(t, 1, before.Keys, "only the heavy client still owes")
	for i := range 7 {
		r, _ := l.Allow(l.HeaderKey(fmt.Appendf(nil, "new-%d", i)), later)
		require.Equal(t, ratelimit.Passed, r)
	}
	after := l.Stats(later)
	assert.Equal(t, before.Evicted, after.Evicted, "idle clients give their places for free")
	assert.Equal(t, 8, after.Keys)
	r, _ = l.Allow(heavy, later)
	assert.Equal(t, ratelimit.Passed, r, "the heavy client, after 2 of its 6 hours, has 2 requests")
}

// TestBound: a limiter never holds more than MaxKeys clients, however
// many come, and its memory is that of its places.
func TestBound(t *testing.T) {
	for _, maxKeys := range []int{8, 100, 1000, 4096} {
		t.Run(fmt.Sprintf("max-keys=%d", maxKeys), func(t *testing.T) {
			l := newLimiter(t, "1/h", 1, func(c *ratelimit.Config) { c.MaxKeys = maxKeys })
			places := l.Config().MaxKeys
			assert.GreaterOrEqual(t, places, maxKeys)
			assert.Less(t, places, maxKeys+8*64, "rounded up to whole sets in each shard")
			t0 := time.Now()
			var buf [4]byte
			for i := range 20 * maxKeys {
				buf[0], buf[1], buf[2], buf[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
				r, _ := l.Allow(l.HeaderKey(buf[:]), t0)
				require.Equal(t, ratelimit.Passed, r)
			}
			st := l.Stats(t0)
			assert.LessOrEqual(t, st.Keys, places)
			assert.Greater(t, st.Keys, places*3/4, "the places are used")
			assert.Equal(t, uint64(20*maxKeys-st.Keys), st.Evicted)
		})
	}
}

// TestMemory: a full limiter holds about 16 bytes per client.
func TestMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := newLimiter(t, "1/h", 1, func(c *ratelimit.Config) { c.MaxKeys = 1 << 16 })
	t0 := time.Now()
	var buf [4]byte
	for i := range 1 << 18 {
		buf[0], buf[1], buf[2] = byte(i), byte(i>>8), byte(i>>16)
		l.Allow(l.HeaderKey(buf[:]), t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d clients: %d bytes, %.1f per client", 1<<16, grew, float64(grew)/(1<<16))
	assert.Less(t, grew, int64(1<<16)*24, "about 16 bytes per client")
	runtime.KeepAlive(l)
}

// TestConcurrent: requests of one client from many goroutines at one
// time pass exactly 1+burst times; of many clients, each its own.
func TestConcurrent(t *testing.T) {
	l := newLimiter(t, "1/h", 9)
	t0 := time.Now()
	var passed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if r, _ := l.Allow(l.AddrKey(addrA), t0); r == ratelimit.Passed {
					passed.Add(1)
				}
				var b [2]byte
				b[0], b[1] = byte(g), byte(i)
				if r, _ := l.Allow(l.HeaderKey(b[:]), t0); r != ratelimit.Passed {
					t.Errorf("client %d/%d: %v", g, i, r)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(10), passed.Load())
}

// TestHandler: through a real server, past the burst a client gets 429
// with Retry-After on the wire, and recovers after 1/rate; the limiter's
// counts say so.
func TestHandler(t *testing.T) {
	l := newLimiter(t, "20/s", 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &fasthttp.Server{Handler: l.Handler(func(ctx *fasthttp.RequestCtx) { ctx.WriteString("ok") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	// Three requests at once: two pass (1+burst), the third cannot
	// unless 50 ms passed between them.
	_, err = fmt.Fprint(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	var got []byte
	buf := make([]byte, 4096)
	for countStatus(got) < 3 {
		n, err := c.Read(buf)
		require.NoError(t, err, "read so far: %q", got)
		got = append(got, buf[:n]...)
	}
	st := l.Stats(time.Now())
	if st.Counts[ratelimit.Limited] == 1 { // not when the machine was slow enough for 50 ms to pass
		assert.Contains(t, string(got), "HTTP/1.1 429 Too Many Requests\r\n")
		assert.Contains(t, string(got), "\r\nRetry-After: 1\r\n")
		assert.Contains(t, string(got), "\r\n\r\nToo Many Requests\n")
	}
	assert.Equal(t, uint64(3), st.Counts[ratelimit.Passed]+st.Counts[ratelimit.Limited])

	time.Sleep(150 * time.Millisecond) // three intervals: the client has a request again
	_, err = fmt.Fprint(c, "GET /4 HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	n, err := c.Read(buf)
	require.NoError(t, err)
	assert.Contains(t, string(buf[:n]), "HTTP/1.1 200 OK\r\n", "recovered")
}

// countStatus counts the status lines in b.
func countStatus(b []byte) int {
	n := 0
	for i := 0; i+9 <= len(b); i++ {
		if string(b[i:i+9]) == "HTTP/1.1 " {
			n++
		}
	}
	return n
}

// TestAllocs: keying a request, deciding it and refusing it allocate
// nothing, once a shard has its sets.
func TestAllocs(t *testing.T) {
	for _, header := range []string{"", "X-Api-Key"} {
		l := newLimiter(t, "1/h", 0, func(c *ratelimit.Config) { c.Header = header; c.MaxKeys = 8 })
		var ctx fasthttp.RequestCtx
		ctx.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5000})
		ctx.Request.Header.Set("X-Api-Key", "secret")
		now := time.Now()
		l.Allow(l.Key(&ctx), now)
		allocs := testing.AllocsPerRun(100, func() {
			r, wait := l.Allow(l.Key(&ctx), now)
			if r == ratelimit.Limited {
				ratelimit.Reject(&ctx, wait)
			}
		})
		assert.Zero(t, allocs, "header %q", header)
		assert.Equal(t, fasthttp.StatusTooManyRequests, ctx.Response.StatusCode())
		assert.Equal(t, "3600", string(ctx.Response.Header.Peek("Retry-After")))
	}
}
