package server

import (
	"io"
	"time"
)

// The head scan (httpsyntax.HeadScan) reads request heads for bare LF
// line endings as they come off the socket, across reads and along a
// pipeline: a bare LF in the head fasthttp is reading is refused at once
// (refuseBareLF); one in a head further on is refused when fasthttp comes
// to that request: in Read if its head needs more bytes, in handle if
// fasthttp parsed it.

const bareLFResponse = "HTTP/1.1 400 Bad Request\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 38\r\n" +
	"\r\n" +
	"Bad Request: line ends in LF, not CRLF"

// reading is the ordinal of the request fasthttp reads or serves now.
func (c *conn) reading() uint64 { return c.requests.Load() + 1 }

// scanRead scans bytes just read, and reports whether the request being
// read is to be refused for a bare LF now (refuseBareLF).
func (c *conn) scanRead(b []byte) bool {
	c.scan.Scan(b)
	return c.bareLFPending()
}

// bareLFPending reports whether the request handle is given had a bare LF
// in its head (found while following a pipeline): handle refuses it.
func (c *conn) bareLFPending() bool {
	bad := c.scan.Bad()
	return bad != 0 && bad == c.reading()
}

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
	s.logRefusal("request refused", "status", 400, "reason", RejectHeaderSyntax.String(), "detail", "bare LF", "remote", c.RemoteAddr().String())
}
