package compress_test

import (
	"bufio"
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	brrr "github.com/molecule-man/go-brrr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/compress"
	"github.com/fastserve/fastserve/internal/tlstest"
)

// jsonBody is about n bytes of JSON, as an API answers.
func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"user %d","email":"user%d@example.com","active":%t}`, i, i*7%1000, i*13%1000, i%3 == 0)
	}
	b.WriteString("]")
	return b.Bytes()
}

// decode decodes body from coding, with a decoder other than the
// encoder where there is one (the standard library's gzip).
func decode(t testing.TB, coding string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch coding {
	case "br":
		r = brrr.NewReader(bytes.NewReader(body))
	case "zstd":
		d, err := zstd.NewReader(bytes.NewReader(body))
		require.NoError(t, err)
		defer d.Close()
		r = d
	case "gzip":
		g, err := stdgzip.NewReader(bytes.NewReader(body))
		require.NoError(t, err)
		r = g
	default:
		t.Fatalf("coding %q", coding)
	}
	out, err := io.ReadAll(r)
	require.NoError(t, err, "decoding %s", coding)
	return out
}

// conn is a client's keep-alive connection to a server.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, s *tlstest.Server) *conn {
	c := s.Dial(t)
	return &conn{c, bufio.NewReader(c)}
}

// get sends a request for path with the header lines given, and reads
// the answer.
func (c *conn) get(t testing.TB, method, path string, lines ...string) *fasthttp.Response {
	t.Helper()
	req := method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n"
	for _, l := range lines {
		req += l + "\r\n"
	}
	resp := &fasthttp.Response{}
	resp.SkipBody = method == "HEAD"
	require.NoError(t, c.c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.WriteString(c.c, req+"\r\n")
	require.NoError(t, err)
	require.NoError(t, resp.Read(c.br))
	return resp
}

// TestCodings: each coding a client may prefer decodes to the handler's
// bytes, with the headers a compressed answer has.
func TestCodings(t *testing.T) {
	body := jsonBody(20 << 10)
	h := compress.Config{}.Handler(func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("ETag", `"v1"`)
		ctx.Response.Header.Set("Accept-Ranges", "bytes")
		ctx.Response.Header.Set("Vary", "Origin")
		ctx.SetBody(body)
	})
	c := dial(t, tlstest.Handler(t, h))
	for _, tc := range []struct{ accept, want string }{
		{"gzip, deflate, br, zstd", "br"},
		{"gzip, zstd", "zstd"},
		{"gzip", "gzip"},
		{"br;q=0.1, gzip;q=0.9", "gzip"},
		{"br;q=0, zstd;q=0, *", "gzip"},
	} {
		t.Run("accept="+tc.accept, func(t *testing.T) {
			resp := c.get(t, "GET", "/", "Accept-Encoding: "+tc.accept)
			require.Equal(t, 200, resp.StatusCode())
			assert.Equal(t, tc.want, string(resp.Header.ContentEncoding()))
			assert.Equal(t, body, decode(t, tc.want, resp.Body()))
			assert.Less(t, len(resp.Body()), len(body)/3)
			assert.Equal(t, [][]byte{[]byte("Origin, Accept-Encoding")}, resp.Header.PeekAll("Vary"))
			assert.Equal(t, `W/"v1"`, string(resp.Header.Peek("ETag")))
			assert.Empty(t, resp.Header.Peek("Accept-Ranges"))
			assert.Equal(t, len(resp.Body()), resp.Header.ContentLength())
		})
	}
	for _, accept := range []string{"", "Accept-Encoding: identity", "Accept-Encoding: *;q=0", "Accept-Encoding: br;q=0", "Accept-Encoding: deflate"} {
		t.Run("refused="+accept, func(t *testing.T) {
			var lines []string
			if accept != "" {
				lines = append(lines, accept)
			}
			resp := c.get(t, "GET", "/", lines...)
			assert.Empty(t, resp.Header.ContentEncoding())
			assert.Equal(t, body, resp.Body())
			assert.Equal(t, [][]byte{[]byte("Origin, Accept-Encoding")}, resp.Header.PeekAll("Vary"), "caches must know it varies")
			assert.Equal(t, `"v1"`, string(resp.Header.Peek("ETag")))
			assert.Equal(t, "bytes", string(resp.Header.Peek("Accept-Ranges")))
		})
	}
}

// TestLeftAlone: the responses not to compress are sent as the handler
// made them, without Vary.
func TestLeftAlone(t *testing.T) {
	body := jsonBody(4 << 10)
	gz := fasthttp.AppendGzipBytes(nil, body)
	for _, tc := range []struct {
		name   string
		method string
		h      fasthttp.RequestHandler
		want   []byte
	}{
		{"head", "HEAD", func(ctx *fasthttp.RequestCtx) { ctx.SetContentType("application/json"); ctx.SetBody(body) }, nil},
		{"status=204", "GET", func(ctx *fasthttp.RequestCtx) { ctx.SetContentType("text/plain"); ctx.SetStatusCode(204) }, nil},
		{"status=206", "GET", func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.Response.Header.Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(body)-1, len(body)*2))
			ctx.SetStatusCode(206)
			ctx.SetBody(body)
		}, body},
		{"encoded", "GET", func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.Response.Header.SetContentEncoding("gzip")
			ctx.SetBody(gz)
		}, gz},
		{"type=image/png", "GET", func(ctx *fasthttp.RequestCtx) { ctx.SetContentType("image/png"); ctx.SetBody(body) }, body},
		{"type=octet-stream", "GET", func(ctx *fasthttp.RequestCtx) { ctx.SetContentType("application/octet-stream"); ctx.SetBody(body) }, body},
		{"small", "GET", func(ctx *fasthttp.RequestCtx) { ctx.SetContentType("text/html"); ctx.SetBody(body[:1023]) }, body[:1023]},
		{"no-transform", "GET", func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/html")
			ctx.Response.Header.Set("Cache-Control", "public, No-Transform")
			ctx.SetBody(body)
		}, body},
		{"stream=not-detachable", "GET", func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/plain")
			ctx.SetBodyStream(bytes.NewReader(body), -1)
		}, body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tlstest.Handler(t, compress.Config{}.Handler(tc.h)))
			resp := c.get(t, tc.method, "/", "Accept-Encoding: gzip, br, zstd")
			assert.Empty(t, resp.Header.Peek("Vary"))
			if tc.name != "encoded" {
				assert.Empty(t, resp.Header.ContentEncoding())
			}
			assert.Equal(t, tc.want, resp.Body())
		})
	}
}

// TestNotModifiedVary: a 304 gets the Vary its 200 would have had (RFC
// 9110 15.4.5), whichever coding the client takes, unless its type is
// one never compressed; and its ETag is not touched unless the client
// validated the weak one a compressed 200 carries.
func TestNotModifiedVary(t *testing.T) {
	for _, tc := range []struct {
		name, typ, accept, vary, etag string
	}{
		{"type=none", "", "gzip", "Accept-Encoding", `"v1"`},
		{"type=text/plain", "text/plain", "identity", "Accept-Encoding", `"v1"`},
		{"type=image/png", "image/png", "gzip", "", `"v1"`},
		{"weak validated", "", "br", "Accept-Encoding", `W/"v1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tlstest.Handler(t, compress.Config{}.Handler(func(ctx *fasthttp.RequestCtx) {
				ctx.Response.Header.SetNoDefaultContentType(true)
				if tc.typ != "" {
					ctx.SetContentType(tc.typ)
				}
				ctx.Response.Header.Set("ETag", `"v1"`)
				ctx.SetStatusCode(304)
			})))
			inm := `"v1"`
			if tc.name == "weak validated" {
				inm = `W/"v1"`
			}
			resp := c.get(t, "GET", "/", "Accept-Encoding: "+tc.accept, "If-None-Match: "+inm)
			assert.Equal(t, 304, resp.StatusCode())
			assert.Equal(t, tc.vary, string(resp.Header.Peek("Vary")))
			assert.Equal(t, tc.etag, string(resp.Header.Peek("ETag")))
		})
	}
}

// TestMinBytes: MinBytes is the smallest body compressed; a negative one
// compresses any.
func TestMinBytes(t *testing.T) {
	body := jsonBody(300)
	for _, tc := range []struct {
		min  int
		size int
		want string
	}{{0, 1023, ""}, {0, 1024, "gzip"}, {100, 100, "gzip"}, {100, 99, ""}, {-1, 1, "gzip"}} {
		t.Run(fmt.Sprintf("min=%d/size=%d", tc.min, tc.size), func(t *testing.T) {
			b := bytes.Repeat(body, 4)[:tc.size]
			h := compress.Config{MinBytes: tc.min}.Handler(func(ctx *fasthttp.RequestCtx) { ctx.SetBody(b) })
			resp := dial(t, tlstest.Handler(t, h)).get(t, "GET", "/", "Accept-Encoding: gzip")
			assert.Equal(t, tc.want, string(resp.Header.ContentEncoding()))
			if tc.want != "" {
				assert.Equal(t, b, decode(t, tc.want, resp.Body()))
			}
		})
	}
}

// TestVary: Accept-Encoding is added to a response's Vary once, on one
// line, in whatever case the handler wrote its lines.
func TestVary(t *testing.T) {
	body := jsonBody(2 << 10)
	for _, tc := range []struct {
		name  string
		lines [][2]string
		want  []string
	}{
		{"none", nil, []string{"Accept-Encoding"}},
		{"other", [][2]string{{"Vary", "Origin"}}, []string{"Origin, Accept-Encoding"}},
		{"already", [][2]string{{"Vary", "origin, accept-encoding"}}, []string{"origin, accept-encoding"}},
		{"star", [][2]string{{"Vary", "*"}}, []string{"*"}},
		{"two", [][2]string{{"Vary", "Origin"}, {"Vary", "Cookie"}}, []string{"Origin, Cookie, Accept-Encoding"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := compress.Config{}.Handler(func(ctx *fasthttp.RequestCtx) {
				for _, l := range tc.lines {
					ctx.Response.Header.Add(l[0], l[1])
				}
				ctx.SetBody(body)
			})
			resp := dial(t, tlstest.Handler(t, h)).get(t, "GET", "/", "Accept-Encoding: zstd")
			var got []string
			for _, v := range resp.Header.PeekAll("Vary") {
				got = append(got, string(v))
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, "zstd", string(resp.Header.ContentEncoding()))
		})
	}
}

// TestETag: a strong ETag is made weak; a weak one stays.
func TestETag(t *testing.T) {
	body := jsonBody(2 << 10)
	for etag, want := range map[string]string{`"abc"`: `W/"abc"`, `W/"abc"`: `W/"abc"`, ``: ``} {
		h := compress.Config{}.Handler(func(ctx *fasthttp.RequestCtx) {
			if etag != "" {
				ctx.Response.Header.Set("ETag", etag)
			}
			ctx.SetBody(body)
		})
		resp := dial(t, tlstest.Handler(t, h)).get(t, "GET", "/", "Accept-Encoding: br")
		assert.Equal(t, want, string(resp.Header.Peek("ETag")), "ETag %s", etag)
		assert.Equal(t, "br", string(resp.Header.ContentEncoding()))
	}
}

// closeCounter is a body stream that records how it was closed.
type closeCounter struct {
	io.Reader
	onClose func() // if set, called at each close
	mu      sync.Mutex
	closes  int
	err     error
}

func (c *closeCounter) CloseWithError(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	c.err = err
	if c.onClose != nil {
		c.onClose()
	}
	return nil
}

func (c *closeCounter) state() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closes, c.err
}

// TestStream: a Detachable stream of unknown length is compressed as it
// streams, sent chunked, and its source closed once, with no error.
func TestStream(t *testing.T) {
	body := jsonBody(200 << 10)
	for _, coding := range []string{"br", "zstd", "gzip"} {
		t.Run("coding="+coding, func(t *testing.T) {
			src := &closeCounter{Reader: bytes.NewReader(body)}
			h := compress.Config{}.Handler(func(ctx *fasthttp.RequestCtx) {
				ctx.SetContentType("application/json")
				ctx.SetBodyStream(compress.Detachable(src), -1)
			})
			resp := dial(t, tlstest.Handler(t, h)).get(t, "GET", "/", "Accept-Encoding: "+coding)
			assert.Equal(t, coding, string(resp.Header.ContentEncoding()))
			assert.Equal(t, -1, resp.Header.ContentLength(), "chunked")
			assert.Equal(t, body, decode(t, coding, resp.Body()))
			assert.Less(t, len(resp.Body()), len(body)/3)
			closes, err := src.state()
			assert.Equal(t, 1, closes)
			assert.NoError(t, err)
		})
	}
}

// TestStreamFlush: what the source gives is sent at once: the client
// decodes the first event before the source is let to send the second.
func TestStreamFlush(t *testing.T) {
	for _, coding := range []string{"br", "zstd", "gzip"} {
		t.Run("coding="+coding, func(t *testing.T) {
			next := make(chan struct{})
			h := compress.Config{}.Handler(func(ctx *fasthttp.RequestCtx) {
				ctx.SetContentType("text/event-stream")
				ctx.SetBodyStream(compress.Detachable(fasthttp.NewStreamReader(func(w *bufio.Writer) {
					for i := range 3 {
						if i > 0 {
							select {
							case <-next:
							case <-time.After(10 * time.Second):
								return
							}
						}
						fmt.Fprintf(w, "data: event %d\n\n", i)
						if w.Flush() != nil {
							return
						}
					}
				})), -1)
			})
			c := dial(t, tlstest.Handler(t, h))
			require.NoError(t, c.c.SetDeadline(time.Now().Add(10*time.Second)))
			_, err := io.WriteString(c.c, "GET /events HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: "+coding+"\r\n\r\n")
			require.NoError(t, err)
			var head fasthttp.ResponseHeader
			require.NoError(t, head.Read(c.br))
			require.Equal(t, coding, string(head.ContentEncoding()))
			events := decoder(t, coding, &chunked{r: c.br})
			for i := range 3 {
				line, err := events.ReadString('\n')
				require.NoError(t, err, "event %d", i)
				assert.Equal(t, fmt.Sprintf("data: event %d\n", i), line)
				blank, err := events.ReadString('\n')
				require.NoError(t, err)
				assert.Equal(t, "\n", blank)
				if i < 2 {
					next <- struct{}{} // sent only once this event is decoded
				}
			}
		})
	}
}

// decoder is a reader of r's decoded bytes, as they arrive.
func decoder(t testing.TB, coding string, r io.Reader) *bufio.Reader {
	t.Helper()
	switch coding {
	case "br":
		return bufio.NewReader(brrr.NewReader(r))
	case "zstd":
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		require.NoError(t, err)
		t.Cleanup(d.Close)
		return bufio.NewReader(d)
	}
	g, err := stdgzip.NewReader(r)
	require.NoError(t, err)
	return bufio.NewReader(g)
}

// chunked reads a chunked body's data as its chunks arrive.
type chunked struct {
	r    *bufio.Reader
	left int
	done bool
}

func (c *chunked) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "%x", &c.left); err != nil {
			return 0, err
		}
		if c.left == 0 {
			c.done = true
			return 0, io.EOF
		}
	}
	n, err := c.r.Read(p[:min(len(p), c.left)])
	c.left -= n
	if c.left == 0 && err == nil {
		_, err = c.r.Discard(2) // CRLF
	}
	return n, err
}

// TestStreamClientGone: a client that leaves mid-stream has the source
// closed once, with the error the write met.
func TestStreamClientGone(t *testing.T) {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	src := &closeCounter{Reader: pr, onClose: func() { pr.CloseWithError(io.ErrClosedPipe) }}
	started := make(chan struct{})
	h := compress.Config{}.Handler(func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/event-stream")
		ctx.SetBodyStream(compress.Detachable(src), -1)
		close(started)
	})
	c := dial(t, tlstest.Handler(t, h))
	_, err := io.WriteString(c.c, "GET / HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n")
	require.NoError(t, err)
	<-started
	_, err = pw.Write([]byte("data: one\n\n"))
	require.NoError(t, err)
	var head fasthttp.ResponseHeader
	require.NoError(t, c.c.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, head.Read(c.br))
	c.c.Close()
	// Each write may still succeed until the server's socket learns the
	// client is gone: write until it fails, at most 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := src.state(); n > 0 {
			break
		}
		_, err := pw.Write(bytes.Repeat([]byte("data: more\n\n"), 100))
		if err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	closes, cerr := src.state()
	assert.Equal(t, 1, closes)
	assert.Error(t, cerr, "closed with the write's error")
	assert.False(t, errors.Is(cerr, io.EOF))
}
