package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/server"
)

// readWire reads what the server writes on c until it closes or sends
// nothing for a while, as the bytes on the wire.
func readWire(t testing.TB, c io.Reader, quiet time.Duration) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		if d, ok := c.(interface{ SetReadDeadline(time.Time) error }); ok {
			require.NoError(t, d.SetReadDeadline(time.Now().Add(quiet)))
		}
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// TestExpectContinue: a request with "Expect: 100-continue" gets its 100
// only if its body will be read. One whose Content-Length is over
// MaxBodyBytes gets 413, and one the request gate refuses gets its
// refusal, with no 100 before it: a client that waits for the 100 never
// sends a body that would be refused, as the expectation is for.
func TestExpectContinue(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := "buffered"
		if stream {
			name = "streamed"
		}
		t.Run(name, func(t *testing.T) {
			echo := func(ctx *fasthttp.RequestCtx) {
				if ctx.Request.IsBodyStream() {
					b, _ := io.ReadAll(ctx.RequestBodyStream())
					ctx.Write(b)
					return
				}
				ctx.Write(ctx.PostBody())
			}
			ts := start(t, server.Config{MaxBodyBytes: 1 << 20, StreamRequestBody: stream}, echo)
			for _, tc := range []struct {
				name   string
				req    string
				status string
				reason server.Reason
			}{
				{"over MaxBodyBytes", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n",
					"HTTP/1.1 413 ", server.RejectBodyTooLarge},
				{"refused by the gate", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
					"HTTP/1.1 400 ", server.RejectTransferEncoding},
			} {
				t.Run(tc.name, func(t *testing.T) {
					before := ts.Stats().Rejected
					c := ts.Dial(t, nil)
					_, err := io.WriteString(c, tc.req)
					require.NoError(t, err)
					wire := readWire(t, c, 2*time.Second)
					assert.NotContains(t, wire, "100 Continue")
					assert.True(t, strings.HasPrefix(wire, tc.status), "the answer: %q", wire)
					after := ts.Stats().Rejected
					assert.Equal(t, before[tc.reason]+1, after[tc.reason], "counted as %s", tc.reason)
				})
			}
			t.Run("accepted", func(t *testing.T) {
				c := ts.Dial(t, nil)
				br := bufio.NewReader(c)
				require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
				_, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
				require.NoError(t, err)
				line, err := br.ReadString('\n')
				require.NoError(t, err)
				assert.Equal(t, "HTTP/1.1 100 Continue\r\n", line)
				blank, err := br.ReadString('\n')
				require.NoError(t, err)
				require.Equal(t, "\r\n", blank)
				_, err = io.WriteString(c, "hello")
				require.NoError(t, err)
				resp := &fasthttp.Response{}
				require.NoError(t, resp.Read(br))
				assert.Equal(t, 200, resp.StatusCode())
				assert.Equal(t, "hello", string(resp.Body()))
			})
		})
	}
}

// TestExpectContinueNoBodyTaken: with DiscardBodies (a handler that
// takes no body: static files), a POST with "Expect: 100-continue" gets
// the handler's answer (405) at once, with no 100 before it (before: 100
// Continue, then 405 once the client had sent its body).
func TestExpectContinueNoBodyTaken(t *testing.T) {
	notAllowed := func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsGet() {
			ctx.Error("Method Not Allowed\n", fasthttp.StatusMethodNotAllowed)
		}
	}
	ts := start(t, server.Config{DiscardBodies: true}, notAllowed)
	c := ts.Dial(t, nil)
	_, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
	require.NoError(t, err)
	wire := readWire(t, c, 2*time.Second)
	assert.NotContains(t, wire, "100 Continue")
	assert.True(t, strings.HasPrefix(wire, "HTTP/1.1 405 "), "the answer, at once: %q", wire)
}

// TestRefusalsCountedByReason: each kind of refused request is counted
// under its own reason, and under no other.
func TestRefusalsCountedByReason(t *testing.T) {
	ts := start(t, server.Config{MaxHeaderBytes: 4096, MaxBodyBytes: 1 << 20}, hello)
	for _, tc := range []struct {
		name   string
		req    string
		reason server.Reason
	}{
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: localhost\r\n\r\n", server.RejectMethod},
		{"version", "GET / HTTP/1.2\r\nHost: localhost\r\n\r\n", server.RejectVersion},
		// fasthttp's parser refuses these before the gate sees them.
		{"malformed version", "GET / HTTP/1.x\r\nHost: localhost\r\n\r\n", server.RejectBadRequest},
		{"expectation", "GET / HTTP/1.1\r\nHost: localhost\r\nExpect: teapot\r\n\r\n", server.RejectExpectation},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n b\r\n\r\n", server.RejectHeaderSyntax},
		{"field name", "GET / HTTP/1.1\r\nHost: localhost\r\nX A: a\r\n\r\n", server.RejectHeaderSyntax},
		{"control byte", "GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\x01b\r\n\r\n", server.RejectBadRequest},
		{"bare LF", "GET / HTTP/1.1\nHost: localhost\n\n", server.RejectHeaderSyntax},
		{"TE with CL", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", server.RejectTransferEncoding},
		{"TE list", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", server.RejectBadRequest},
		{"body too large", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000000\r\n\r\n", server.RejectBodyTooLarge},
		{"header too large", getOfSize(t, 5000), server.RejectHeaderTooLarge},
		{"unparsable", "GET\r\n\r\n", server.RejectBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.Stats().Rejected
			c := ts.Dial(t, wholeRecords(ts))
			_, err := io.WriteString(c, tc.req)
			require.NoError(t, err)
			wire := readWire(t, c, 2*time.Second)
			require.True(t, strings.HasPrefix(wire, "HTTP/1.1 4") || strings.HasPrefix(wire, "HTTP/1.1 5"), "refused: %q", wire)
			assert.Equal(t, 1, strings.Count(wire, "HTTP/1.1 "), "one answer on the wire: %q", wire)
			want := before
			want[tc.reason]++
			assert.Eventually(t, func() bool { return ts.Stats().Rejected == want }, time.Second, 5*time.Millisecond,
				"only %s counted: before %v, after %v", tc.reason, before, ts.Stats().Rejected)
		})
	}
}

// TestRefusedBeforeBody: a request whose framing the gate refuses is
// answered as soon as its header block is read, without waiting for a body
// that has not all arrived (before: no answer until the body timeout).
func TestRefusedBeforeBody(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "buffered", true: "streamed"}[stream], func(t *testing.T) {
			ts := start(t, server.Config{BodyTimeout: 30 * time.Second, StreamRequestBody: stream}, hello)
			for _, tc := range []struct {
				name, req, status string
				reason            server.Reason
			}{
				{"TE with CL", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhe",
					"HTTP/1.1 400 ", server.RejectTransferEncoding},
				// fasthttp's parser refuses this one itself, at once.
				{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe",
					"HTTP/1.1 400 ", server.RejectBadRequest},
				{"TRACE with a body", "TRACE / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nhalf",
					"HTTP/1.1 405 ", server.RejectMethod},
				{"obs-fold with a body", "POST / HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n b\r\nContent-Length: 100\r\n\r\nhalf",
					"HTTP/1.1 400 ", server.RejectHeaderSyntax},
			} {
				t.Run(tc.name, func(t *testing.T) {
					before := ts.Stats().Rejected
					c := ts.Dial(t, nil)
					start := time.Now()
					_, err := io.WriteString(c, tc.req)
					require.NoError(t, err)
					wire := readWire(t, c, 5*time.Second)
					assert.Less(t, time.Since(start), 2*time.Second, "answered at once, not after the body timeout")
					assert.True(t, strings.HasPrefix(wire, tc.status), "the answer: %q", wire)
					assert.Equal(t, 1, strings.Count(wire, "HTTP/1.1 "), "one answer: %q", wire)
					want := before
					want[tc.reason]++
					assert.Eventually(t, func() bool { return ts.Stats().Rejected == want }, time.Second, 5*time.Millisecond,
						"only %s counted: %v", tc.reason, ts.Stats().Rejected)
				})
			}
		})
	}
}

// TestPipelinedBareLF: a bare LF in a pipelined request's head is refused
// when that request's turn comes, whatever came before it, and the
// requests before it are answered.
func TestPipelinedBareLF(t *testing.T) {
	echo := func(ctx *fasthttp.RequestCtx) { ctx.Write(ctx.PostBody()) }
	ts := start(t, server.Config{}, echo)
	for _, tc := range []struct {
		name     string
		req      string
		answered int // 200s before the 400
		refused  bool
	}{
		{"request line", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\nHost: x\r\n\r\n", 1, true},
		{"whole head", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\nHost: x\n\n", 1, true},
		{"after a body", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nline\nxyGET /b HTTP/1.1\nHost: x\r\n\r\n", 1, true},
		{"third", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\nHost: x\r\n\r\n", 2, true},
		{"bare LF in a body is a body", "POST /a HTTP/1.1\r\nHost: x\r\ncontent-LENGTH:  5 \r\n\r\na\nb\ncGET /b HTTP/1.1\r\nHost: x\r\n\r\n", 2, false},
		{"after a chunked body", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na\nb\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.Dial(t, nil)
			_, err := io.WriteString(c, tc.req)
			require.NoError(t, err)
			wire := readWire(t, c, 2*time.Second)
			assert.Equal(t, tc.answered, strings.Count(wire, "HTTP/1.1 200 "), "answered: %q", wire)
			if tc.refused {
				assert.Contains(t, wire, "HTTP/1.1 400 Bad Request")
				assert.Contains(t, wire, "line ends in LF", "refused for its bare LF: %q", wire)
				assert.Equal(t, tc.answered+1, strings.Count(wire, "HTTP/1.1 "), "nothing after the refusal: %q", wire)
			} else {
				assert.NotContains(t, wire, "HTTP/1.1 400")
			}
		})
	}
}

// TestJSONLogAddresses: addresses in the server's log lines are text in
// any format (before: slog's JSON handler printed them as Go structs).
func TestJSONLogAddresses(t *testing.T) {
	logs := &logBuffer{}
	ts := start(t, server.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))}, hello)
	c := ts.Dial(t, nil)
	_, err := io.WriteString(c, "TRACE / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	readWire(t, c, time.Second)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"request refused"`) }, time.Second, 5*time.Millisecond)
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		for _, k := range []string{"remote", "peer", "addr"} {
			if v, ok := m[k]; ok {
				assert.IsType(t, "", v, "%s in %s", k, line)
			}
		}
		if v, ok := m["addrs"]; ok {
			for _, a := range v.([]any) {
				assert.IsType(t, "", a, "addrs in %s", line)
			}
		}
	}
}

// TestErrorBodies: every answer the engine makes itself has one shape, a
// status text with an optional reason and a newline (before: "Bad
// Request" and "Request Timeout" had no newline, the gate's answers had).
func TestErrorBodies(t *testing.T) {
	panics := func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/panic" {
			panic("test")
		}
		ctx.WriteString("hello")
	}
	ts := start(t, server.Config{MaxHeaderBytes: 4096, MaxBodyBytes: 1024, HeaderTimeout: 300 * time.Millisecond}, panics)
	shape := regexp.MustCompile(`^(Bad Request|Request Timeout|Request Header Fields Too Large|Request Entity Too Large|Internal Server Error)(: [^\n]+)?\n$`)
	for _, tc := range []struct{ name, req string }{
		{"garbage", "GARBAGE\r\n\r\n"},
		{"framing", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"header too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8000) + "\r\n\r\n"},
		{"body too large", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("b", 2000)},
		{"timeout", "GET / HTTP/1.1\r\nHost: x\r\n"},
		{"panic", "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.Dial(t, nil)
			_, err := io.WriteString(c, tc.req)
			require.NoError(t, err)
			wire := readWire(t, c, 3*time.Second)
			var resp fasthttp.Response
			require.NoError(t, resp.Read(bufio.NewReader(strings.NewReader(wire))), "%q", wire)
			assert.GreaterOrEqual(t, resp.StatusCode(), 400)
			assert.Regexp(t, shape, string(resp.Body()))
			assert.Equal(t, "text/plain; charset=utf-8", string(resp.Header.ContentType()))
		})
	}
}
