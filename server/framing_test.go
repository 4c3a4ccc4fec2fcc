package server_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
)

// A framingCase is a raw request and what fastserve answers: the status,
// how many requests its handler saw, and whether it closed the connection.
// net/http is the deviation noted for the published table.
type framingCase struct {
	name    string
	req     string
	status  int
	handled int
	closed  bool
}

const crlf = "\r\n"

func framingCases() []framingCase {
	get := func(headers ...string) string {
		return "GET / HTTP/1.1" + crlf + strings.Join(append([]string{"Host: x"}, headers...), crlf) + crlf + crlf
	}
	post := func(headers string, body string) string {
		return "POST / HTTP/1.1" + crlf + "Host: x" + crlf + headers + crlf + body
	}
	long := strings.Repeat("a", 5000)
	return []framingCase{
		{"valid GET", get(), 200, 1, false},
		{"valid POST with Content-Length", post("Content-Length: 5"+crlf, "hello"), 200, 1, false},
		{"valid chunked POST", post("Transfer-Encoding: chunked"+crlf, "5\r\nhello\r\n0\r\n\r\n"), 200, 1, false},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 200, 1, true},
		{"unknown but valid method", "FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 200, 1, false},
		{"Content-Length and Transfer-Encoding, then a smuggled request",
			post("Content-Length: 4"+crlf+"Transfer-Encoding: chunked"+crlf, "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), 400, 0, true},
		{"Transfer-Encoding list", post("Transfer-Encoding: gzip, chunked"+crlf, "0\r\n\r\n"), 400, 0, true},
		{"Transfer-Encoding twice", post("Transfer-Encoding: chunked"+crlf+"Transfer-Encoding: chunked"+crlf, "0\r\n\r\n"), 400, 0, true},
		// RFC 9112 says SHOULD 501; fasthttp's parser refuses the coding
		// with a 400 before fastserve sees the request.
		{"Transfer-Encoding unknown coding", post("Transfer-Encoding: gzip"+crlf, "x"), 400, 0, true},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 0, true},
		{"Content-Length twice, different", post("Content-Length: 1"+crlf+"Content-Length: 2"+crlf, "ab"), 400, 0, true},
		{"Content-Length twice, same", post("Content-Length: 2"+crlf+"Content-Length: 2"+crlf, "ab"), 400, 0, true},
		{"Content-Length with a sign", post("Content-Length: +2"+crlf, "ab"), 400, 0, true},
		{"Content-Length not digits", post("Content-Length: 2a"+crlf, "ab"), 400, 0, true},
		{"Content-Length overflow", post("Content-Length: 99999999999999999999999"+crlf, "ab"), 400, 0, true},
		{"obs-fold", get("X-A: 1", " folded"), 400, 0, true},
		{"obs-fold with a tab", get("X-A: 1", "\tfolded"), 400, 0, true},
		{"space inside a field name", get("X A: 1"), 400, 0, true},
		{"space before the colon", get("X-A : 1"), 400, 0, true},
		{"non-token byte in a field name", get("X(A): 1"), 400, 0, true},
		{"NUL in a value", get("X-A: a\x00b"), 400, 0, true},
		{"bare CR in a value", get("X-A: a\rb"), 400, 0, true},
		{"control byte in a value", get("X-A: a\x01b"), 400, 0, true},
		{"DEL in a value", get("X-A: a\x7fb"), 400, 0, true},
		{"control byte in the target", "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0, true},
		{"space inside the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0, true},
		{"malformed version", "GET / HTTP/1\r\nHost: x\r\n\r\n", 400, 0, true},
		{"lower-case version", "GET / http/1.1\r\nHost: x\r\n\r\n", 400, 0, true},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505, 0, true},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, 0, true},
		{"HTTP/3.0", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505, 0, true},
		{"header block over the limit", get("X-A: " + long), 431, 0, true},
		{"request line over the limit", "GET /" + long + " HTTP/1.1\r\nHost: x\r\n\r\n", 431, 0, true},
		{"Host missing in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400, 0, true},
		{"Host twice", get("Host: y"), 400, 0, true},
		{"absolute-form target sets the host", "GET http://example.com/a HTTP/1.1\r\nHost: other\r\n\r\n", 200, 1, false},
		{"body over the limit, announced", post("Content-Length: 2000"+crlf, ""), 413, 0, true},
		{"chunked body over the limit", post("Transfer-Encoding: chunked"+crlf, "800\r\n"+strings.Repeat("x", 2048)+"\r\n0\r\n\r\n"), 413, 0, true},
		{"chunk size overflow", post("Transfer-Encoding: chunked"+crlf, "ffffffffffffffffffff\r\nx\r\n0\r\n\r\n"), 400, 0, true},
		{"chunk size not hex", post("Transfer-Encoding: chunked"+crlf, "zz\r\nx\r\n0\r\n\r\n"), 400, 0, true},
		{"Expect: 100-continue, read", post("Content-Length: 5"+crlf+"Expect: 100-continue"+crlf, ""), 200, 1, false},
		{"Expect: 100-continue over the limit", post("Content-Length: 2000"+crlf+"Expect: 100-continue"+crlf, ""), 413, 0, true},
		{"Expect: something else", get("Expect: foo"), 417, 0, true},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, 0, true},
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, 0, true},
		{"non-token byte in the method", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0, true},
		{"bare LF line endings", "GET / HTTP/1.1\nHost: x\n\n", 400, 0, true},
		{"bare LF in a header line", "GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", 400, 0, true},
		{"bare LF in a body is data", post("Content-Length: 3"+crlf, "a\nb"), 200, 1, false},
	}
}

// outcome is what one server did with one raw request.
type outcome struct {
	status  int // 0: no answer before the connection closed or timed out
	handled int
	closed  bool
	host    string
}

func (o outcome) String() string {
	c := "open"
	if o.closed {
		c = "closed"
	}
	return fmt.Sprintf("%d / %d / %s", o.status, o.handled, c)
}

// exchange sends a raw request on a fresh connection and watches what
// comes back: the answer (after a 100 Continue, it sends the 5-byte body),
// then whether the connection is closed within 300 ms.
func exchange(t *testing.T, dial func() net.Conn, req string, handled *atomic.Int64, host *atomic.Value) outcome {
	t.Helper()
	c := dial()
	defer c.Close()
	before := handled.Load()
	host.Store("")
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c, req)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	var o outcome
	// fasthttp's Response.Read skips a 100 Continue: look for it first.
	if b, err := br.Peek(12); err == nil && string(b) == "HTTP/1.1 100" {
		for {
			line, err := br.ReadString('\n')
			require.NoError(t, err)
			if line == "\r\n" {
				break
			}
		}
		_, err := io.WriteString(c, "hello")
		require.NoError(t, err)
	}
	resp := &fasthttp.Response{}
	if err := resp.Read(br); err == nil {
		o.status = resp.StatusCode()
	}
	require.NoError(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = br.ReadByte()
	var ne net.Error
	o.closed = !(errors.As(err, &ne) && ne.Timeout())
	o.handled = int(handled.Load() - before)
	o.host, _ = host.Load().(string)
	return o
}

// TestRequestFraming runs the table against fastserve over TLS and, for
// the record, against net/http in the same process.
func TestRequestFraming(t *testing.T) {
	var handled atomic.Int64
	var host atomic.Value
	ts := start(t, server.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 4096, HeaderTimeout: time.Second}, func(ctx *fasthttp.RequestCtx) {
		handled.Add(1)
		host.Store(string(ctx.Host()))
		ctx.WriteString("ok")
	})
	tlsDial := func() net.Conn {
		c, err := tls.Dial("tcp", ts.Addr, ts.TLSConfig())
		require.NoError(t, err)
		return c
	}

	var nethandled atomic.Int64
	var nethost atomic.Value
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	hs := &http.Server{
		ReadHeaderTimeout: time.Second,
		MaxHeaderBytes:    4096,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			nethandled.Add(1)
			nethost.Store(r.Host)
			if _, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1024)); err != nil {
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				return
			}
			io.WriteString(w, "ok")
		}),
	}
	go hs.Serve(ln)
	defer hs.Close()
	plainDial := func() net.Conn {
		c, err := net.Dial("tcp4", ln.Addr().String())
		require.NoError(t, err)
		return c
	}

	var ngxHandled atomic.Int64
	var ngxHost atomic.Value
	ngxDial, ngxSkip := startNginx(t, &ngxHandled, &ngxHost)
	if ngxSkip != "" {
		t.Logf("nginx column skipped: %s", ngxSkip)
	}

	var table strings.Builder
	table.WriteString("| request | fastserve | net/http | nginx 1.22 |\n|---|---|---|---|\n")
	for _, tc := range framingCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, tlsDial, tc.req, &handled, &host)
			want := outcome{status: tc.status, handled: tc.handled, closed: tc.closed, host: got.host}
			assert.Equal(t, want.String(), got.String(), "status / handler calls / connection")
			if strings.HasPrefix(tc.name, "absolute-form") {
				assert.Equal(t, "example.com", got.host)
			}
			nh := exchange(t, plainDial, tc.req, &nethandled, &nethost)
			ngx := "skipped"
			if ngxDial != nil {
				ngx = exchange(t, ngxDial, tc.req, &ngxHandled, &ngxHost).String()
			}
			fmt.Fprintf(&table, "| %s | %s | %s | %s |\n", tc.name, got, nh, ngx)
		})
	}
	st := ts.Stats().Rejected
	assert.NotZero(t, st[server.RejectMethod])
	assert.NotZero(t, st[server.RejectVersion])
	assert.NotZero(t, st[server.RejectExpectation])
	assert.NotZero(t, st[server.RejectHeaderSyntax])
	if path := os.Getenv("FRAMING_TABLE"); path != "" {
		require.NoError(t, os.WriteFile(path, []byte(table.String()), 0o644))
	}
}

// startNginx runs Debian's nginx (installed by .ci/run) in front of a
// counting backend, configured as the table's fastserve is: 1 KiB body
// limit, 4 KiB header buffers, 1 s header and body timeouts, requests
// proxied so that "the handler saw it" means the same for all three. It
// returns a dial function, or why nginx cannot run here.
func startNginx(t *testing.T, handled *atomic.Int64, host *atomic.Value) (func() net.Conn, string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			return nil, "no nginx binary (.ci/run installs Debian's nginx-light as root)"
		}
	}
	backend, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	bs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		host.Store(r.Host)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})}
	go bs.Serve(backend)
	t.Cleanup(func() { bs.Close() })

	probe, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := probe.Addr().String()
	probe.Close()
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	client_max_body_size 1k;
	client_header_buffer_size 1k;
	large_client_header_buffers 4 4k;
	client_header_timeout 1s;
	client_body_timeout 1s;
	server {
		listen %[2]s;
		location / {
			proxy_pass http://%[3]s;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
`, dir, addr, backend.Addr())
	require.NoError(t, os.WriteFile(dir+"/nginx.conf", []byte(conf), 0o644))
	cmd := exec.Command(bin, "-p", dir, "-c", dir+"/nginx.conf")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, "nginx did not start: " + err.Error()
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp4", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(dir + "/error.log")
			return nil, fmt.Sprintf("nginx did not listen on %s: %s %s", addr, out.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() net.Conn {
		c, err := net.Dial("tcp4", addr)
		require.NoError(t, err)
		return c
	}, ""
}
