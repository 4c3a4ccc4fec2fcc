package httpsyntax

import "bytes"

// HeadScan reads HTTP/1 request heads for bare LF line endings as they arrive
// from the socket, across reads. fasthttp needs CRLFCRLF to end a head,
// so such a request would wait for the header timeout, and it takes a
// request line that ends in LF alone; nginx accepts both, RFC 9112 allows
// either, fastserve refuses them (docs/http-strictness.md). The zero
// value scans nothing until Start.
//
// A scan starts with the read that brings a new request. Past the end of
// a head it follows on to the next, pipelined, one: it skips the body the
// head announces with one Content-Length, and stops following (scans no
// further until the next request starts afresh) at anything else it
// cannot delimit as fasthttp would: a Transfer-Encoding, several or odd
// Content-Lengths. Heads are known by their ordinal on the connection
// (the first request's is 1): the caller refuses a bad head when it
// comes to that request (Bad).
type HeadScan struct {
	on    bool   // bytes read are scanned
	head  uint64 // the ordinal on the connection of the head being scanned (or whose body is skipped)
	prev  byte   // the byte before the current one
	lines int    // the head's lines ended so far: 0 while in the request line
	line  int    // bytes of the current line so far
	skip  int64  // body bytes to skip before the next head

	// The start of the current line, kept across reads: enough to tell a
	// Content-Length or Transfer-Encoding line, and a length's value.
	kept   [40]byte
	length int64 // the head's Content-Length, or -1 for none

	badHead uint64 // the ordinal of a head with a bare LF, still to refuse, or 0
}

// Start begins the scan of a new request head, the ordinal-th on the
// connection, with the read that brings it; a bad head found further on
// stays known.
func (h *HeadScan) Start(ordinal uint64) {
	bad := h.badHead
	h.reset(ordinal, 0)
	if bad >= ordinal {
		h.badHead = bad // found while following, not yet reached
	}
}

func (h *HeadScan) reset(ordinal uint64, prev byte) {
	bad := h.badHead
	h.on, h.head, h.prev, h.lines, h.line, h.skip, h.length, h.badHead = true, ordinal, prev, 0, 0, 0, -1, bad
}

// Scan reads the next bytes from the socket and reports the ordinal of a
// head with a line that ends in LF alone, or 0; the first one found is
// also kept (Bad). It looks at each line's end, and at the start of each
// header line.
func (h *HeadScan) Scan(b []byte) uint64 {
	if !h.on {
		return 0
	}
	bad := h.scan(b)
	if bad != 0 && h.badHead == 0 {
		h.badHead = bad
	}
	return bad
}

// Stop ends the scan for good, forgetting what it found: the bytes that
// follow are not HTTP (a connection switched protocols).
func (h *HeadScan) Stop() { h.on, h.badHead = false, 0 }

// Bad is the ordinal of the first head found with a bare LF that is still
// to be refused, or 0.
func (h *HeadScan) Bad() uint64 { return h.badHead }

func (h *HeadScan) scan(b []byte) uint64 {
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
				// The byte before the next head stays the one before, so
				// that a CR that ends a body and an LF that begins the
				// next head are seen as the CRLF they are on the wire.
				h.reset(h.head+1, h.prev)
			}
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			h.keep(b)
			h.line += len(b)
			h.prev = b[len(b)-1]
			return 0
		}
		h.keep(b[:i])
		before := h.prev
		if i > 0 {
			before = b[i-1]
		}
		if before != '\r' {
			h.on = false
			return h.head
		}
		n := h.line + i // the line's bytes, its CR included
		b = b[i+1:]
		h.line, h.prev = 0, '\n'
		switch {
		case n == 1: // "\r\n" alone: the head is over
			if h.length > 0 {
				h.skip, h.length = h.length, -1
			} else {
				h.reset(h.head+1, '\n')
			}
		case h.lines == 0: // the request line
			h.lines++
		default:
			h.lines++
			h.header(n - 1)
		}
	}
	return 0
}

// keep adds b to the kept start of the current line.
func (h *HeadScan) keep(b []byte) {
	if h.line < len(h.kept) {
		copy(h.kept[h.line:], b)
	}
}

// header reads a header line of n bytes (CR excluded) from its kept start:
// a Transfer-Encoding (a chunked body) ends the following, as does a
// Content-Length given twice or not as digits alone; one Content-Length
// gives the body to skip.
func (h *HeadScan) header(n int) {
	line := h.kept[:min(n, len(h.kept))]
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return // no name this short: neither field
	}
	name := line[:colon]
	switch {
	case bytes.EqualFold(name, []byte("transfer-encoding")):
		h.on = false
	case bytes.EqualFold(name, []byte("content-length")):
		v := bytes.Trim(line[colon+1:], " \t")
		if h.length >= 0 || n > len(h.kept) || len(v) == 0 || len(v) > 12 {
			h.on = false
			return
		}
		var l int64
		for _, c := range v {
			if c < '0' || c > '9' {
				h.on = false
				return
			}
			l = l*10 + int64(c-'0')
		}
		h.length = l
	}
}
