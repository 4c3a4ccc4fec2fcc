package main

// Reproductions of defects found by testing the built binary from the
// outside (a new user with the README, an operator, an attacker). Each
// test states the expected behaviour by the house rules; on the commit it
// was written against, each of them fails.

import (
	"bufio"
	"compress/gzip"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// newHandlerUpstream serves h over plain HTTP on 127.0.0.1:0 and returns
// its URL.
func newHandlerUpstream(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// newRawUpstream answers every request whose head is not a health check
// (GET /) with the bytes answer, then holds the connection for a second
// and closes it. Health checks get 200.
func newRawUpstream(t testing.TB, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				if strings.HasPrefix(line, "GET / ") {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					return
				}
				io.WriteString(c, answer)
				time.Sleep(time.Second)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readAllRaw writes req on a fresh TLS connection to addr and reads what
// comes back until the server closes the connection.
func readAllRaw(t testing.TB, addr, req string) (head, body string) {
	t.Helper()
	c := dial(t, addr, insecure)
	_, err := io.WriteString(c, req)
	require.NoError(t, err)
	b, _ := io.ReadAll(c.br)
	h, rest, ok := strings.Cut(string(b), "\r\n\r\n")
	require.True(t, ok, "no answer head in %q", b)
	return h, rest
}

// TestOutsideHTTP10StreamedAnswerNotChunked: an HTTP/1.0 client cannot
// read chunked framing (RFC 9112 section 6.1: a server MUST NOT send
// Transfer-Encoding unless the request is HTTP/1.1 or later). A proxied
// answer whose length is unknown (the upstream streams it chunked, or the
// route compresses it as it streams) must reach an HTTP/1.0 client
// close-delimited, its body the upstream's bytes. fastserve sends it
// chunked, and the client reads the chunk sizes as part of the body.
func TestOutsideHTTP10StreamedAnswerNotChunked(t *testing.T) {
	t.Parallel()
	parts := []string{strings.Repeat("a", 3000), strings.Repeat("b", 3000), strings.Repeat("c", 3000)}
	url := newHandlerUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for _, p := range parts {
			io.WriteString(w, p)
			w.(http.Flusher).Flush() // chunked to the proxy
		}
	})
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf(`routes:
  - path: /s/
    proxy: %s
  - path: /z/
    proxy: %s
    compress: true
`, url, url))
	in := serve(t, childEnv(t), "--config", cfg, "--proxy-health-interval", "1h")
	want := strings.Join(parts, "")

	head, body := readAllRaw(t, in.https, "GET /s/x HTTP/1.0\r\nHost: localhost\r\n\r\n")
	assert.NotContains(t, strings.ToLower(head), "transfer-encoding", "an HTTP/1.0 client gets no chunked framing:\n%s", head)
	assert.Equal(t, len(want), len(body), "the body is the upstream's bytes, no chunk sizes")
	assert.Equal(t, want, body)

	head, body = readAllRaw(t, in.https, "GET /z/x HTTP/1.0\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n")
	assert.NotContains(t, strings.ToLower(head), "transfer-encoding", "an HTTP/1.0 client gets no chunked framing:\n%s", head)
	if strings.Contains(strings.ToLower(head), "content-encoding: gzip") {
		zr, err := gzip.NewReader(strings.NewReader(body))
		require.NoError(t, err, "the body is a gzip stream, not chunk sizes: %q", body[:min(len(body), 16)])
		plain, err := io.ReadAll(zr)
		require.NoError(t, err)
		assert.Equal(t, want, string(plain))
	} else {
		assert.Equal(t, want, body)
	}
}

// TestOutsideProxyKeepsMissingContentType: an upstream answer without a
// Content-Type goes to the client without one (RFC 9110 section 8.3: the
// recipient may then sniff; nginx and HAProxy add none). fastserve adds
// "text/plain; charset=utf-8" (fasthttp's default), which tells browsers
// that an image or a download is text, and on a route with compress: true
// makes it compress binary bytes as text.
func TestOutsideProxyKeepsMissingContentType(t *testing.T) {
	t.Parallel()
	bin := make([]byte, 3000)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	url := newHandlerUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // no Content-Type, not sniffed
		w.Header().Set("Content-Length", fmt.Sprint(len(bin)))
		w.Write(bin)
	})
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf(`routes:
  - path: /plain/
    proxy: %s
  - path: /z/
    proxy: %s
    compress: true
`, url, url))
	in := serve(t, childEnv(t), "--config", cfg, "--proxy-health-interval", "1h")
	c := httpsClient(t, insecure)
	resp, body := get(t, c, "https://"+in.https+"/plain/blob")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, resp.Header.Values("Content-Type"), "the upstream sent no Content-Type")
	assert.Equal(t, string(bin), body)

	resp, body = get(t, c, "https://"+in.https+"/z/blob", "Accept-Encoding", "gzip")
	assert.Empty(t, resp.Header.Values("Content-Type"), "the upstream sent no Content-Type")
	assert.Empty(t, resp.Header.Get("Content-Encoding"), "an answer of no known textual type is not compressed")
	if resp.Header.Get("Content-Encoding") == "" {
		assert.Equal(t, string(bin), body)
	}
}

// TestOutsideCompressedValidatorsOn304AndHead: on a compressing route the
// 200 carries ETag W/"v1" and Vary: Accept-Encoding. A 304 to the same
// request MUST carry the ETag and Vary the 200 would have (RFC 9110
// section 15.4.5), else a cache cannot match the 304's strong "v1" to the
// stored W/"v1" (RFC 9111 section 4.3.4) and the validators of one
// answer disagree; and a HEAD SHOULD carry the GET's header fields (RFC
// 9110 section 9.3.2). fastserve sends the upstream's strong "v1" and no
// Vary on both.
func TestOutsideCompressedValidatorsOn304AndHead(t *testing.T) {
	t.Parallel()
	body := strings.Repeat(`{"name":"item","price":10,"in_stock":true},`, 500)
	url := newHandlerUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v1"`)
		if inm := r.Header.Get("If-None-Match"); inm == `"v1"` || inm == `W/"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Method != http.MethodHead {
			io.WriteString(w, body)
		}
	})
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf("routes:\n  - path: /z/\n    proxy: %s\n    compress: true\n", url))
	in := serve(t, childEnv(t), "--config", cfg, "--proxy-health-interval", "1h")
	c := httpsClient(t, insecure)

	full, _ := get(t, c, "https://"+in.https+"/z/data", "Accept-Encoding", "gzip")
	require.Equal(t, "gzip", full.Header.Get("Content-Encoding"))
	require.Equal(t, `W/"v1"`, full.Header.Get("ETag"))
	require.Contains(t, full.Header.Get("Vary"), "Accept-Encoding")

	notMod, _ := get(t, c, "https://"+in.https+"/z/data", "Accept-Encoding", "gzip", "If-None-Match", `W/"v1"`)
	require.Equal(t, http.StatusNotModified, notMod.StatusCode)
	assert.Equal(t, full.Header.Get("ETag"), notMod.Header.Get("ETag"), "the 304's ETag is the 200's")
	assert.Contains(t, notMod.Header.Get("Vary"), "Accept-Encoding", "the 304's Vary is the 200's")

	req, err := http.NewRequest(http.MethodHead, "https://"+in.https+"/z/data", nil)
	require.NoError(t, err)
	req.Header.Set("Accept-Encoding", "gzip")
	head, err := c.Do(req)
	require.NoError(t, err)
	head.Body.Close()
	assert.Equal(t, full.Header.Get("ETag"), head.Header.Get("ETag"), "HEAD's ETag is GET's")
	assert.Contains(t, head.Header.Get("Vary"), "Accept-Encoding", "HEAD's Vary is GET's")
}

// TestOutsideProxyMaxFailsZero: check prints "proxy-max-fails: 0" as the
// value serve will use, but serve uses 3 (proxy.Config's zero is the
// default) and takes a failing upstream out after 3 failures. nginx's
// max_fails=0 turns the accounting off, so 0 reads as "never". What check
// accepts, serve runs, as check prints it: either 0 means what it says,
// or check refuses it or prints the 3 serve will use.
func TestOutsideProxyMaxFailsZero(t *testing.T) {
	t.Parallel()
	r := run(t, childEnv(t), "check", "--proxy", "http://127.0.0.1:1", "--proxy-max-fails", "0")
	if r.code == 2 {
		return // refused: fine
	}
	var line string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "proxy-max-fails:") {
			line = l
		}
	}
	if strings.Contains(line, "derived") {
		return // says what serve will use: fine
	}
	require.Equal(t, "proxy-max-fails: 0  # flag --proxy-max-fails", line)

	// check says 0; serve must then never take an upstream out for failed
	// requests.
	bad := newRawUpstream(t, "HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\nok")
	good := newRecordingUpstream(t, "good")
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf(`routes:
  - path: /pf/
    proxy: [%s, %s]
    balance: round-robin
`, good.url, bad))
	in := serve(t, childEnv(t), "--config", cfg, "--proxy-max-fails", "0", "--proxy-health-interval", "1h")
	c := httpsClient(t, insecure)
	for range 10 {
		get(t, c, "https://"+in.https+"/pf/x")
	}
	assert.NotContains(t, in.log(), `msg="upstream down"`, "check printed proxy-max-fails: 0, yet serve took the upstream out")
}

// TestOutsideStripPrefixBarePath: the README's migration of nginx's
// "location /api/ { proxy_pass http://pool/; }" is a route /api/ with
// strip-prefix: true. A request for /api (no slash) is an ordinary
// request, not a malformed one: nginx answers it 301 to /api/, Caddy's
// handle_path leaves it to the next handler. fastserve answers 400
// "ambiguous path".
func TestOutsideStripPrefixBarePath(t *testing.T) {
	t.Parallel()
	api := newRecordingUpstream(t, "api")
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf(`routes:
  - path: /api/
    proxy: %s
    strip-prefix: true
`, api.url))
	in := serve(t, childEnv(t), "--config", cfg, "--proxy-health-interval", "1h")
	c := httpsClient(t, insecure)
	for _, p := range []string{"/api", "/api?x=1"} {
		resp, body := get(t, c, "https://"+in.https+p)
		assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode, "GET %s: %s", p, body)
		assert.Equal(t, strings.Replace(p, "/api", "/api/", 1), resp.Header.Get("Location"))
	}
}

// TestOutsideOneClientTakesEveryUpstreamConn: one client that keeps
// --proxy-max-conns requests open on an upstream (slow answers,
// server-sent events, long polls) leaves none for any other client, who
// waits --proxy-connect-timeout and gets 503. House rule: no client holds
// more than a bounded share of upstream connections, and one bad client
// never hurts another.
func TestOutsideOneClientTakesEveryUpstreamConn(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var slow atomic.Int32
	url := newHandlerUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slow.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok "+r.URL.Path)
	})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	const pool = 4
	in := serve(t, childEnv(t), "--proxy", url, "--proxy-max-conns", fmt.Sprint(pool),
		"--proxy-connect-timeout", "1s", "--proxy-health-interval", "1h")

	for range pool {
		go func() {
			c, err := dialFromErr("127.0.0.2", in.https, insecure)
			if err != nil {
				return
			}
			defer c.Close()
			c.do(http.MethodGet, "/slow")
		}()
	}
	// --proxy-max-conns-per-client is half the pool by default: two reach
	// the upstream, the other two get 503 at once.
	require.True(t, eventually(5*time.Second, func() bool { return slow.Load() == pool/2 }), "the slow requests reached the upstream")
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, int32(pool/2), slow.Load(), "one client's share of the upstream connections")

	other := dialFrom(t, "127.0.0.3", in.https, insecure)
	resp, body, err := other.do(http.MethodGet, "/fast")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "another client is served while one holds %d slow requests: %s", pool, body)
	once.Do(func() { close(release) })
}

// TestOutsideALPNHTTP10: a client that offers only the ALPN protocol
// "http/1.0" (curl --http1.0 does) speaks a protocol fastserve serves, yet
// its handshake is refused with no_application_protocol.
func TestOutsideALPNHTTP10(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t))
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", in.https,
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.0"}})
	require.NoError(t, err, "a client offering http/1.0 only")
	defer c.Close()
	_, err = io.WriteString(c, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestOutsideUpstreamBadChunk502: an upstream answer whose chunked body
// is malformed from its first chunk (no byte of it sent yet) gets 502, as
// the other malformed answers do; fastserve closed the connection with
// nothing written (curl: "Empty reply from server").
func TestOutsideUpstreamBadChunk502(t *testing.T) {
	t.Parallel()
	bad := newRawUpstream(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n")
	in := serve(t, childEnv(t), "--proxy", bad, "--proxy-health-interval", "1h")
	c := dial(t, in.https, insecure)
	resp, _, err := c.do(http.MethodGet, "/x")
	require.NoError(t, err, "an answer, not a closed connection")
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
}

// TestOutsideCheckPrintsProxyZeroAsUsed: check prints, for a value serve
// derives, the one it will use ("drain-timeout: 30s  # flag
// --drain-timeout, derived from 0s"). The --proxy-* settings given 0 are
// printed as 0 (proxy-timeout: 0s, proxy-max-conns: 0), which reads as no
// timeout or no bound, while serve uses their defaults (60s, 512, ...).
func TestOutsideCheckPrintsProxyZeroAsUsed(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"proxy-timeout", "proxy-connect-timeout", "proxy-max-conns", "proxy-max-header-bytes",
		"proxy-health-interval", "proxy-body-buffer-bytes", "proxy-upgrade-idle-timeout", "proxy-max-fails"} {
		r := run(t, childEnv(t), "check", "--proxy", "http://127.0.0.1:1", "--"+f, "0")
		if r.code == 2 {
			continue // refused: fine
		}
		var line string
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(l, f+":") {
				line = l
			}
		}
		assert.Contains(t, line, "derived from 0", "--%s 0: check prints what serve will use", f)
	}
}

// TestOutsideBcryptQueueSharedByAllClients: bcrypt checks run at most
// GOMAXPROCS/2 at once, in one queue for every site and client. One
// client that sends a stream of distinct wrong passwords (each checked,
// since none is remembered yet) on many connections makes every other
// client's first login (and every login after a reload, which forgets
// the credentials checked) wait behind its queue: 12 s here with 200
// connections, against 0.08 s alone. House rule: one bad client never
// hurts another (the site's rate limit helps only where one is set).
func TestOutsideBcryptQueueSharedByAllClients(t *testing.T) {
	t.Parallel()
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), 10)
	require.NoError(t, err)
	up := newRecordingUpstream(t, "app")
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf("proxy: %s\naccess: {basic-auth: {alice: %q, bob: %q}}\n", up.url, hash, hash))
	in := serve(t, childEnv(t), "--config", cfg, "--proxy-health-interval", "1h")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i := range 100 {
		wg.Go(func() {
			c, err := dialFromErr("127.0.0.2", in.https, insecure)
			if err != nil {
				return
			}
			defer c.Close()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				cred := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "alice:wrong-%d-%d", i, j))
				if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic %s\r\n\r\n", cred); err != nil {
					return
				}
				if _, _, err := c.readResponse(http.MethodGet); err != nil {
					return
				}
				sent.Add(1)
			}
		})
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	time.Sleep(2 * time.Second) // the attacker's queue fills

	other := dialFrom(t, "127.0.0.3", in.https, insecure)
	_ = other.SetDeadline(time.Now().Add(60 * time.Second))
	begin := time.Now()
	_, err = fmt.Fprintf(other, "GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic %s\r\n\r\n",
		base64.StdEncoding.EncodeToString([]byte("bob:right")))
	require.NoError(t, err)
	resp, _, err := other.readResponse(http.MethodGet)
	took := time.Since(begin)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Less(t, took, 2*time.Second, "another client's first login waits behind one client's wrong passwords (%d of them checked)", sent.Load())
}

// TestOutsideMaxConnsPerIPv6Subscriber: --max-conns-per-ip counts each
// IPv6 address on its own, while a subscriber holds a whole /64 (the
// rate limits key IPv6 clients by their /64 for that very reason:
// "would otherwise have a new budget at each of its addresses"). One
// IPv6 client thus opens as many connections as it has addresses: here
// 8 from one /64 (through a balancer's PROXY protocol, as the README's
// deployment has it) with --max-conns-per-ip 2. House rule: no client
// holds more than a bounded share of descriptors.
func TestOutsideMaxConnsPerIPv6Subscriber(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t), "--max-conns-per-ip", "2", "--proxy-protocol", "--proxy-protocol-from", "127.0.0.1/32")
	_, port, _ := net.SplitHostPort(in.https)
	admitted := 0
	for i := range 8 {
		tc, err := net.DialTimeout("tcp", in.https, 5*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { tc.Close() })
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = fmt.Fprintf(tc, "PROXY TCP6 2001:db8:1:2::%x ::1 40000 %s\r\n", i+1, port)
		require.NoError(t, err)
		c := tls.Client(tc, insecure)
		if c.Handshake() == nil {
			admitted++
		}
	}
	assert.LessOrEqual(t, admitted, 2, "connections admitted from one /64 with --max-conns-per-ip 2")
}

// TestOutsideReloadCommandNamesSettingsNotApplied: fastserve reload
// prints "reloaded" and exits 0 when the file changed a setting a reload
// does not apply (max-conns-per-ip, write-timeout): the server logs it,
// but the operator who ran the command is told the reload went through,
// and the new bound is not in force. House rule: every setting takes
// effect or the command fails naming it; reload should at least name
// each setting kept at its running value.
func TestOutsideReloadCommandNamesSettingsNotApplied(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, "up")
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", "proxy: "+up.url+"\n")
	in := serve(t, childEnv(t), "--config", cfg, "--proxy-health-interval", "1h")
	writeFile(t, filepath.Dir(cfg), "fastserve.yaml", "proxy: "+up.url+"\nmax-conns-per-ip: 7\nwrite-timeout: 10s\n")
	r := run(t, childEnv(t), "reload", "--config", cfg, "--admin", in.admin)
	in.waitLog(`setting=max-conns-per-ip running=0 configured=7`, 0)
	out := r.stdout + r.stderr
	assert.Contains(t, out, "max-conns-per-ip", "fastserve reload names the setting it did not apply; it said %q (exit %d)", out, r.code)
	assert.Contains(t, out, "write-timeout", "fastserve reload names the setting it did not apply; it said %q (exit %d)", out, r.code)
}

// TestOutsideHashStickyAcrossRestart: balance: hash keeps a key on its
// upstream "while that one is up", but its seed is per process, so a
// restart or a --handover (the README's zero-downtime deploy) moves about
// (N-1)/N of the sessions though no upstream changed, and two
// --share-port processes send one session's connections to different
// upstreams. nginx's "hash ... consistent" maps a key the same in every
// worker and across restarts. Expected: the same key goes to the same
// upstream in every process of the same configuration.
func TestOutsideHashStickyAcrossRestart(t *testing.T) {
	t.Parallel()
	a, b, c := newRecordingUpstream(t, "a"), newRecordingUpstream(t, "b"), newRecordingUpstream(t, "c")
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf(`routes:
  - path: /app/
    proxy: [%s, %s, %s]
    balance: hash
    hash-key: cookie:session
`, a.url, b.url, c.url))
	mapping := func() map[int]string {
		in := serve(t, childEnv(t), "--config", cfg, "--proxy-health-interval", "1h")
		cl := httpsClient(t, insecure)
		m := map[int]string{}
		for s := range 30 {
			_, body := get(t, cl, "https://"+in.https+"/app/x", "Cookie", fmt.Sprintf("session=%d", s))
			m[s] = body
		}
		in.signal(syscall.SIGTERM)
		in.wait(10 * time.Second)
		return m
	}
	first, second := mapping(), mapping()
	moved := 0
	for s := range first {
		if first[s] != second[s] {
			moved++
		}
	}
	assert.Zero(t, moved, "sessions that moved to another upstream on a restart, of %d, no upstream changed", len(first))
}

// TestOutsideCheckPrintsRouteSettings: check prints a site's route with
// its compress and rate-limit ("(compress=false)", "(rate-limit=...)"),
// but not its balance and hash-key (new this sitting), nor add-prefix or
// access; and a top-level route (the default site's) with none of its
// settings at all, though serve applies them all. Check prints the values
// serve will use.
func TestOutsideCheckPrintsRouteSettings(t *testing.T) {
	t.Parallel()
	site := writeFile(t, t.TempDir(), "site.yaml", `sites:
  - hosts: [a.test]
    proxy: http://127.0.0.1:1
    routes:
      - path: /x/
        proxy: [http://127.0.0.1:1, http://127.0.0.1:2]
        balance: hash
        hash-key: cookie:s
`)
	routeLines := func(out string) string {
		var b strings.Builder
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "sites[") || strings.HasPrefix(l, "route:") {
				b.WriteString(l + "\n")
			}
		}
		return b.String()
	}
	r := run(t, childEnv(t), "check", "--config", site)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, routeLines(r.stdout), "hash-key=cookie:s", "a site's route's balance")

	top := writeFile(t, t.TempDir(), "top.yaml", `routes:
  - path: /x/
    proxy: [http://127.0.0.1:1, http://127.0.0.1:2]
    balance: hash
    hash-key: cookie:s
    compress: true
    rate-limit: {rate: 1/s}
`)
	r = run(t, childEnv(t), "check", "--config", top)
	require.Equal(t, 0, r.code, r.stderr)
	for _, want := range []string{"hash-key=cookie:s", "compress=true", "rate-limit=1/s"} {
		assert.Contains(t, routeLines(r.stdout), want, "a top-level route's settings")
	}
}

// TestOutsideUpgradeAttemptsBypassPool: a request that asks for an
// upgrade goes upstream on a connection of its own, outside the pool and
// --proxy-max-conns, and that connection is closed by the proxy after a
// non-101 answer. Any client can add "Connection: Upgrade" and "Upgrade:
// foo" to ordinary requests to an ordinary upstream (which answers 200)
// and make the proxy open and close one upstream TCP connection per
// request: each leaves a TIME_WAIT socket on the proxy's side, and at a
// few hundred requests a second one client uses up the ephemeral ports
// toward that upstream (28,232 by default, 60 s each); every other
// client's request that needs a new connection then gets 502 ("connect:
// cannot assign requested address") and the upstream is marked down.
// /tmp/fs-o/repro-upgrade-port-exhaustion.sh shows it end to end between
// two network namespaces. Expected: upgrade attempts are bounded like
// other upstream connections (the pool's bound, or a per-client one), or
// a complete non-101 answer leaves its connection reusable.
func TestOutsideUpgradeAttemptsBypassPool(t *testing.T) {
	t.Parallel()
	var newConns atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain answer") }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				newConns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	const pool = 4
	in := serve(t, childEnv(t), "--proxy", "http://"+ln.Addr().String(), "--proxy-max-conns", fmt.Sprint(pool), "--proxy-health-interval", "1h")

	c := dial(t, in.https, insecure)
	const n = 100
	for i := range n {
		_, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
		require.NoError(t, err)
		resp, body, err := c.readResponse(http.MethodGet)
		require.NoError(t, err, "request %d", i)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	}
	assert.LessOrEqual(t, newConns.Load(), int64(pool), "upstream connections opened for %d requests of one client with --proxy-max-conns %d", n, pool)
}

// TestOutsideHTTP10UpgradeIgnored: RFC 9110 section 7.8: "A server MUST
// ignore an Upgrade header field that is received in an HTTP/1.0
// request." fastserve forwards an HTTP/1.0 request's Upgrade upstream
// (as HTTP/1.1) and relays the 101, making a tunnel for a protocol
// version that has no upgrade.
func TestOutsideHTTP10UpgradeIgnored(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", "routes:\n  - path: /ws/\n    proxy: ["+up.url+"]\n")
	in := serve(t, childEnv(t), "--config", cfg, "--proxy-health-interval", "1h")
	c := dial(t, in.https, insecure)
	_, err := io.WriteString(c, "GET /ws/x HTTP/1.0\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(c.br, nil)
	require.NoError(t, err)
	assert.NotEqual(t, http.StatusSwitchingProtocols, resp.StatusCode, "an HTTP/1.0 request is not upgraded")
}
