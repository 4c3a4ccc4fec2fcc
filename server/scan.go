package server

import (
	"io"
	"time"
)

// headScan reads a request head for bare LF line endings as it arrives,
// across reads. fasthttp needs CRLFCRLF to end a head, so such a request
// would wait for the header timeout; nginx accepts it, RFC 9112 allows
// either, fastserve refuses it at once. A head already buffered behind a
// pipelined request is not read here (checkRawHeaders still sees its
// header lines).
type headScan struct {
	on   bool // a head is being read
	prev byte // the byte before the current one
	line int  // bytes in the current line so far
}

// start begins the scan of a new request head.
func (h *headScan) start() { *h = headScan{on: true} }

// bareLF reads the next bytes of a request head, up to its blank line,
// and reports whether a line ends in LF alone.
func (h *headScan) bareLF(b []byte) bool {
	for _, ch := range b {
		if ch == '\n' {
			if h.prev != '\r' {
				return true
			}
			if h.line == 1 { // "\r\n" alone: the head is over
				h.on = false
				return false
			}
			h.line = 0
		} else {
			h.line++
		}
		h.prev = ch
	}
	return false
}

const bareLFResponse = "HTTP/1.1 400 Bad Request\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 38\r\n" +
	"\r\n" +
	"Bad Request: line ends in LF, not CRLF"

// refuseBareLF answers a bare-LF request head with a 400 and counts it;
// Read then ends fasthttp's read with errAnswered, so that the answer is
// the only one on the wire, and counted once.
func (c *conn) refuseBareLF() {
	s := c.srv
	s.stats.reject(RejectHeaderSyntax)
	s.stats.requests.Add(1)
	s.stats.responses[4].Add(1)
	_ = c.Conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, _ = io.WriteString(c.Conn, bareLFResponse)
	c.closeWith(closeLinger)
	s.logRefusal("request refused", "status", 400, "reason", RejectHeaderSyntax.String(), "detail", "bare LF", "remote", c.RemoteAddr())
}
