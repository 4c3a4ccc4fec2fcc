package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingUpstream is a plain HTTP server on 127.0.0.1:0 that answers
// "from NAME PATH" and records the requests it gets.
type recordingUpstream struct {
	url  string
	mu   sync.Mutex
	reqs []*http.Request
}

func newRecordingUpstream(t testing.TB, name string) *recordingUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &recordingUpstream{url: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r)
		u.mu.Unlock()
		w.Header().Set("Server", "upstream")
		w.Write([]byte("from " + name + " " + r.URL.Path))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *recordingUpstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.reqs...)
}

func TestProxyFlag(t *testing.T) {
	t.Parallel()
	a, b := newRecordingUpstream(t, "a"), newRecordingUpstream(t, "b")
	in := serve(t, childEnv(t), "--proxy", a.url+","+b.url, "--proxy-health-interval", "1h")
	in.waitLog(`msg=proxying path=/ upstreams="\[`+a.url+` `+b.url+`\]"`, 0)
	c := httpsClient(t, insecure)
	for i := range 4 {
		resp, body := get(t, c, "https://"+in.https+"/x/y?z=1", "X-Forwarded-For", "198.51.100.9")
		assert.Equal(t, http.StatusOK, resp.StatusCode, "request %d", i)
		assert.Contains(t, []string{"from a /x/y", "from b /x/y"}, body)
		assert.Equal(t, "fastserve", resp.Header.Get("Server"))
	}
	got := append(a.requests(), b.requests()...)
	require.Len(t, got, 4)
	assert.NotEmpty(t, a.requests(), "both upstreams take requests")
	assert.NotEmpty(t, b.requests(), "both upstreams take requests")
	r := got[0]
	assert.Equal(t, "/x/y?z=1", r.RequestURI)
	assert.Equal(t, in.https, r.Host, "the client's Host")
	assert.Equal(t, "198.51.100.9, 127.0.0.1", r.Header.Get("X-Forwarded-For"))
	assert.Equal(t, "https", r.Header.Get("X-Forwarded-Proto"))
	assert.Equal(t, in.https, r.Header.Get("X-Forwarded-Host"))
	assert.Equal(t, `for=127.0.0.1;proto=https;host="`+in.https+`"`, r.Header.Get("Forwarded"))

	_, metrics := adminGet(t, in, "/metrics")
	lines := strings.Split(metrics, "\n")
	assert.Contains(t, lines, `fastserve_upstream_up{upstream="`+a.url+`"} 1`)
	assert.Contains(t, lines, `fastserve_upstream_requests_total{upstream="`+a.url+`"} `+itoa(len(a.requests())))
}

func TestProxyRoutesFile(t *testing.T) {
	t.Parallel()
	api := newRecordingUpstream(t, "api")
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", "routes:\n  - path: /api/\n    proxy: ["+api.url+"]\nproxy-host-header: upstream\n")
	in := serve(t, childEnv(t), "--config", cfg)
	c := httpsClient(t, insecure)
	resp, body := get(t, c, "https://"+in.https+"/api/v1")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "from api /api/v1", body)
	require.Len(t, api.requests(), 1)
	assert.Equal(t, strings.TrimPrefix(api.url, "http://"), api.requests()[0].Host, "--proxy-host-header upstream")
	resp, body = get(t, c, "https://"+in.https+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "<h1>fastserve is running</h1>", "the rest goes to the built-in page")

	r := run(t, childEnv(t), "check", "--config", cfg)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, strings.Split(r.stdout, "\n"), "route: /api/ -> "+api.url+"  # config file "+cfg+":2")
}

func TestProxyRefusedThroughBinary(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	in := serve(t, childEnv(t), "--proxy", "http://127.0.0.1:"+itoa(port))
	resp, body := get(t, httpsClient(t, insecure), "https://"+in.https+"/")
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Equal(t, "502 Bad Gateway\n", body, "no internal address to the client")
	in.waitLog(`level=WARN msg="upstream down" upstream=http://127.0.0.1:`+itoa(port), 0)
}

// TestProxyClientGoneThroughBinary: through the engine's connections, a
// client that closes while its request waits for the upstream cancels
// it: the upstream's connection closes within 2 s, and with
// --proxy-max-conns 1 the next request is answered.
func TestProxyClientGoneThroughBinary(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	got := make(chan struct{}, 1)
	closed := make(chan time.Duration, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for range 100 {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.URL.Path != "/slow" {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfast")
						continue
					}
					got <- struct{}{}
					start := time.Now()
					c.SetReadDeadline(start.Add(5 * time.Second))
					br.ReadByte() // EOF when the proxy closes the connection
					closed <- time.Since(start)
					return
				}
			}()
		}
	}()
	in := serve(t, childEnv(t), "--proxy", "http://"+ln.Addr().String(), "--proxy-health-interval", "1h",
		"--proxy-max-conns", "1", "--proxy-connect-timeout", "1s")
	c := dial(t, in.https, insecure)
	_, err = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the request did not reach the upstream", in.log())
	}
	require.NoError(t, c.Close())
	select {
	case d := <-closed:
		assert.Less(t, d, 2*time.Second, "the upstream's connection closed after %v", d)
	case <-time.After(6 * time.Second):
		require.FailNow(t, "the upstream saw nothing")
	}
	resp, body := get(t, httpsClient(t, insecure), "https://"+in.https+"/fast")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "fast", body)
}

func itoa(n int) string { return strconv.Itoa(n) }
