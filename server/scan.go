package server

import (
	"io"
	"time"
)

// headScan reads request heads for bare LF line endings as they arrive
// from the socket, across reads. fasthttp needs CRLFCRLF to end a head,
// so such a request would wait for the header timeout, and it takes a
// request line that ends in LF alone; nginx accepts both, RFC 9112 allows
// either, fastserve refuses them (docs/http-strictness.md).
//
// A scan starts with the read that brings a new request. Past the end of
// a head it follows on to the next, pipelined, one: it skips the body the
// head announces with one Content-Length, and stops following (scans no
// further until the next request starts afresh) at anything else it
// cannot delimit as fasthttp would: a Transfer-Encoding, several or odd
// Content-Lengths. A bare LF in the head fasthttp is reading is refused
// at once (refuseBareLF); one in a head further on is refused when
// fasthttp comes to that request (badHead): in Read if its head needs
// more bytes, in handle if fasthttp parsed it.
type headScan struct {
	on   bool   // bytes read are scanned
	head uint64 // the ordinal on the connection of the head being scanned (or whose body is skipped)
	prev byte   // the byte before the current one
	line int    // bytes in the current line so far
	skip int64  // body bytes to skip before the next head

	// The header field being matched at the start of a line: which names
	// it may still be, how far it is matched, and the Content-Length
	// value read so far.
	field   uint8 // a fieldMatch mask
	pos     int
	inValue uint8 // the field whose value is being read, or 0
	length  int64 // Content-Length, or -1 for none yet
	digits  bool  // the value has its digits, only spaces may follow

	badHead uint64 // the ordinal of a head with a bare LF, still to refuse, or 0
}

const (
	matchLength   uint8 = 1 << iota // "content-length:"
	matchEncoding                   // "transfer-encoding:"
)

const (
	nameLength   = "content-length"
	nameEncoding = "transfer-encoding"
)

// start begins the scan of a new request head, the ordinal-th on the
// connection.
func (h *headScan) start(ordinal uint64) {
	bad := h.badHead
	*h = headScan{on: true, head: ordinal, length: -1} // the request line matches no field
	if bad >= ordinal {
		h.badHead = bad // found while following, not yet reached
	}
}

// scan reads the next bytes from the socket and reports the ordinal of a
// head whose line ends in LF alone, or 0.
func (h *headScan) scan(b []byte) uint64 {
	for len(b) > 0 && h.on {
		if h.skip > 0 {
			n := int64(len(b))
			if n > h.skip {
				n = h.skip
			}
			h.skip -= n
			h.prev = b[n-1]
			b = b[n:]
			if h.skip == 0 {
				h.next()
			}
			continue
		}
		ch := b[0]
		b = b[1:]
		if ch == '\n' {
			if h.prev != '\r' {
				h.on = false
				return h.head
			}
			if h.line == 1 { // "\r\n" alone: the head is over
				h.endHead()
				continue
			}
			h.endLine()
			continue
		}
		h.byteOfLine(ch)
		h.line++
		h.prev = ch
	}
	return 0
}

// byteOfLine follows a byte of a header line (not its line end) through
// the match of the field names that delimit a body.
func (h *headScan) byteOfLine(ch byte) {
	if h.inValue != 0 {
		switch {
		case h.inValue == matchEncoding:
		case ch >= '0' && ch <= '9' && !h.digits:
			if h.length > 1<<40 {
				h.on = false // far past any body limit: leave it to fasthttp
				return
			}
			h.length = max(h.length, 0)*10 + int64(ch-'0')
		case ch == ' ' || ch == '\t':
			if h.length >= 0 {
				h.digits = true
			}
		case ch == '\r':
		default:
			h.on = false // a value fasthttp would refuse, or read otherwise
		}
		return
	}
	if h.field == 0 {
		return
	}
	if ch == ':' {
		switch {
		case h.field&matchLength != 0 && h.pos == len(nameLength):
			if h.length >= 0 {
				h.on = false // a second Content-Length
				return
			}
			h.inValue = matchLength
		case h.field&matchEncoding != 0 && h.pos == len(nameEncoding):
			h.inValue = matchEncoding
		}
		h.field = 0
		return
	}
	lower := ch
	if 'A' <= ch && ch <= 'Z' {
		lower += 'a' - 'A'
	}
	if h.field&matchLength != 0 && (h.pos >= len(nameLength) || nameLength[h.pos] != lower) {
		h.field &^= matchLength
	}
	if h.field&matchEncoding != 0 && (h.pos >= len(nameEncoding) || nameEncoding[h.pos] != lower) {
		h.field &^= matchEncoding
	}
	h.pos++
}

// endLine readies the match for the next header line.
func (h *headScan) endLine() {
	if h.inValue == matchEncoding {
		h.on = false // a chunked body: not followed
		return
	}
	if h.inValue == matchLength && h.length < 0 {
		h.on = false // an empty value
		return
	}
	h.line, h.prev = 0, '\n'
	h.field, h.pos, h.inValue, h.digits = matchLength|matchEncoding, 0, 0, false
}

// endHead skips the body the head announced, or goes on to the next head.
func (h *headScan) endHead() {
	if h.length > 0 {
		h.skip = h.length
		h.length = -1
		return
	}
	h.next()
}

// next begins the scan of the next, pipelined, head. The byte before it
// stays the one before, so that a CR that ends a body and an LF that
// begins the next head are seen as the CRLF they are on the wire.
func (h *headScan) next() {
	bad, prev := h.badHead, h.prev
	*h = headScan{on: true, head: h.head + 1, length: -1, badHead: bad, prev: prev}
}

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
	if c.scan.on {
		if bad := c.scan.scan(b); bad != 0 && c.scan.badHead == 0 {
			c.scan.badHead = bad
		}
	}
	return c.scan.badHead != 0 && c.scan.badHead == c.reading()
}

// bareLFPending reports whether the request handle is given had a bare LF
// in its head (found while following a pipeline): handle refuses it.
func (c *conn) bareLFPending() bool {
	return c.scan.badHead != 0 && c.scan.badHead == c.reading()
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
	s.logRefusal("request refused", "status", 400, "reason", RejectHeaderSyntax.String(), "detail", "bare LF", "remote", c.RemoteAddr())
}
