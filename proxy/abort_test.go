package proxy_test

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// TestProxyAbort: Abort ends a request waiting for an upstream that does
// not answer, at once, by closing its connection; a request after it
// gets 502 without reaching the upstream.
func TestProxyAbort(t *testing.T) {
	release := make(chan struct{})
	up := newRawUpstream(t, func(seen) string {
		<-release
		return ""
	})
	t.Cleanup(func() { close(release) }) // before the upstream's own cleanup: its handlers return
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}})
	ts := startProxy(t, p)

	c := ts.Dial(t)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	done := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	require.True(t, eventually(5*time.Second, func() bool { return len(up.Seen()) == 1 }), "the request reached the upstream")
	start := time.Now()
	p.Abort()
	select {
	case status := <-done:
		assert.Equal(t, http.StatusBadGateway, status)
	case <-time.After(2 * time.Second):
		require.FailNow(t, "the request still waits for its upstream 2s after Abort")
	}
	t.Logf("answered %v after Abort", time.Since(start).Round(time.Millisecond))

	_, resp, _ := proxyExchange(t, ts, "GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Len(t, up.Seen(), 1, "nothing reaches the upstream after Abort")
}
