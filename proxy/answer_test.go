package proxy_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// bigHead is an answer whose head is about 6 KiB, with a cookie in it.
func bigHead(seen) string {
	return "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 6<<10) + "\r\nSet-Cookie: session=SECRET-big\r\nContent-Length: 2\r\n\r\nok"
}

// TestProxyMaxResponseHeaderBytes: an upstream's head over
// MaxResponseHeaderBytes (4 KiB by default) gets 502; raised, it passes.
func TestProxyMaxResponseHeaderBytes(t *testing.T) {
	up := newRawUpstream(t, bigHead)
	for _, tc := range []struct {
		name   string
		max    int
		status int
	}{
		{"default", 0, http.StatusBadGateway},
		{"8KiB", 8 << 10, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}, MaxResponseHeaderBytes: tc.max})
			ts := startProxy(t, p)
			head, resp, _ := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.status == http.StatusOK {
				assert.Equal(t, []string{strings.Repeat("a", 6<<10)}, headLines(head, "X-Big"))
			}
		})
	}
	t.Run("bounds", func(t *testing.T) {
		for _, v := range []int{-1, 512, 2 << 20} {
			err := proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{"http://a"}}}, MaxResponseHeaderBytes: v}.Validate()
			var ce *proxy.ConfigError
			require.ErrorAs(t, err, &ce, "MaxResponseHeaderBytes %d", v)
			assert.Equal(t, "MaxResponseHeaderBytes", ce.Field)
			assert.Contains(t, err.Error(), "must be from 1024 to 1048576 bytes, or 0 for 4096")
		}
	})
}

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestProxyLogsNoUpstreamBytes: an answer that is not HTTP, or whose
// head is too large, gets 502 and a log line that names the upstream and
// the kind of failure, but quotes none of the upstream's bytes: they may
// hold its cookies or credentials.
func TestProxyLogsNoUpstreamBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(seen) string
	}{
		{"status line", func(seen) string {
			return "HTTP/1.1 abc SECRET-status\r\nSet-Cookie: session=SECRET-status\r\nContent-Length: 0\r\n\r\n"
		}},
		{"not HTTP", func(seen) string { return "SECRET-garbage Set-Cookie: session=SECRET-garbage\r\n\r\n" }},
		{"header line", func(seen) string {
			return "HTTP/1.1 200 OK\r\nSet-Cookie: session=SECRET-line\r\nAuthorization SECRET-line\r\nContent-Length: 0\r\n\r\n"
		}},
		{"head too large", bigHead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newRawUpstream(t, tc.answer)
			var log syncBuffer
			p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}, Logger: slogTo(&log)})
			ts := startProxy(t, p)
			_, resp, _ := proxyExchange(t, ts, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
			assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
			assert.Contains(t, log.String(), `msg="upstream error" upstream=`+up.URL()+" kind=protocol")
			assert.NotContains(t, log.String(), "SECRET")
		})
	}
	t.Run("health check", func(t *testing.T) {
		up := newRawUpstream(t, func(seen) string {
			return "HTTP/1.1 200 OK\r\nSet-Cookie: session=SECRET-health\r\nAuthorization SECRET-health\r\nContent-Length: 0\r\n\r\n"
		})
		var log syncBuffer
		newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}, Logger: slogTo(&log), HealthInterval: 20 * time.Millisecond})
		require.True(t, eventually(5*time.Second, func() bool { return strings.Contains(log.String(), `msg="upstream down"`) }), log.String())
		assert.Contains(t, log.String(), "missing colon: [redacted]")
		assert.NotContains(t, log.String(), "SECRET")
	})
}
