package server

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// memConn is a connection whose reads come from a byte slice (then EOF)
// and whose writes are kept: fastserve's request path without a socket.
type memConn struct {
	r   *bytes.Reader
	out bytes.Buffer
}

func (c *memConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *memConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

const fuzzMaxBody = 1 << 16

// fastserveRequests serves in through the server's real handler chain (the
// request gate, fasthttp's parser, its error answers, configured by the
// same newFastHTTP as New's) and returns the body
// length of each request the handler saw.
func fastserveRequests(t *testing.T, in []byte) []int {
	cfg, err := Config{MaxBodyBytes: fuzzMaxBody, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var bodies []int
	fs := newServer(cfg).newFastHTTP(func(ctx *fasthttp.RequestCtx) { bodies = append(bodies, len(ctx.PostBody())) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = fs.ServeConn(&memConn{r: bytes.NewReader(in)})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the request path held the connection for 5 s on %q", in)
	}
	return bodies
}

// netHTTPRequests reads in with net/http's parser and returns the body
// length of each request it read whole.
func netHTTPRequests(in []byte) []int {
	var bodies []int
	br := bufio.NewReader(bytes.NewReader(in))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return bodies
		}
		n, err := io.Copy(io.Discard, io.LimitReader(req.Body, fuzzMaxBody+1))
		if err != nil || n > fuzzMaxBody {
			return bodies
		}
		bodies = append(bodies, int(n))
	}
}

// FuzzRequestFraming looks for inputs on which fastserve and net/http
// both accept a request but disagree on where it ends: the number of
// requests or a body's length. A panic, or a request path that holds the
// connection, fails too.
func FuzzRequestFraming(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fs := fastserveRequests(t, in)
		nh := netHTTPRequests(in)
		for i := 0; i < min(len(fs), len(nh)); i++ {
			if fs[i] != nh[i] {
				t.Fatalf("request %d: fastserve read a %d-byte body, net/http %d: %q", i, fs[i], nh[i], in)
			}
		}
	})
}
