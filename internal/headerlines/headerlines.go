// Package headerlines deletes lines from a fasthttp header without
// changing the order of the lines left, and walks a header's bytes line
// by line.
//
// fasthttp's Del fills the hole it leaves with the header's last line, so
// a delete can swap two lines of one name: with Connection, Link: <a>,
// Link: <b>, deleting Connection leaves Link: <b>, Link: <a>. The order of
// a field's lines is part of its value (RFC 9110 5.3: Cache-Control, Link,
// Vary, WWW-Authenticate, a client's several Accept or Cookie lines). A
// proxy deletes on nearly every message (Connection: keep-alive from a
// browser, Transfer-Encoding and Keep-Alive from an upstream), so
// DelRequest and DelResponse delete with fasthttp's Del when no name left
// has two lines, the common case, and rebuild the header otherwise.
package headerlines

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/httpsyntax"
)

// Names is a list of header names, to delete: they match a line's name
// whatever its case. Build it with Add, from nil; it is bytes, so that a
// caller can build one per message in a buffer it reuses. Its first 8
// bytes are a filter (a bit per length and first and last letter) that
// turns most names away at once; then each name, after a byte of its
// length.
type Names []byte

// Add returns n with name added; a name longer than 255 bytes is not.
func (n Names) Add(name []byte) Names {
	if len(name) > 255 {
		return n
	}
	if len(n) < 8 {
		n = append(n[:0], 0, 0, 0, 0, 0, 0, 0, 0)
	}
	binary.LittleEndian.PutUint64(n, binary.LittleEndian.Uint64(n)|filterBit(name))
	return append(append(n, byte(len(name))), name...)
}

// Has reports whether n holds name, whatever its case.
func (n Names) Has(name []byte) bool { return n.Index(name) >= 0 }

// Index is the place of name in n, the order Add added them in, whatever
// its case, or -1.
func (n Names) Index(name []byte) int {
	if len(n) < 8 || binary.LittleEndian.Uint64(n)&filterBit(name) == 0 {
		return -1
	}
	i := 0
	for rest := n[8:]; len(rest) > 0; i++ {
		l := int(rest[0])
		if l == len(name) && bytes.EqualFold(rest[1:1+l], name) {
			return i
		}
		rest = rest[1+l:]
	}
	return -1
}

// filterBit is name's bit in a Names' filter.
func filterBit(name []byte) uint64 {
	if len(name) == 0 {
		return 1
	}
	return 1 << ((uint(len(name))*7 + uint(name[0]|0x20)*3 + uint(name[len(name)-1]|0x20)) & 63)
}

// Next returns the name and value of the first header line in rest, a
// header's lines as fasthttp writes them (CRLF ends, a blank line last),
// and the lines after it; ok is false past the last. (A loop, not an
// iterator: the iterator's closures allocate.)
func Next(rest []byte) (k, v, after []byte, ok bool) {
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, crlf)
		if k, v, ok := bytes.Cut(line, []byte{':'}); ok {
			return k, bytes.TrimSpace(v), rest, true
		}
	}
	return nil, nil, nil, false
}

// Of is the header lines of raw, a message head's bytes, after its
// request or status line: Next's first argument.
func Of(raw []byte) []byte {
	_, rest, _ := bytes.Cut(raw, crlf)
	return rest
}

var crlf = []byte("\r\n")

// nameSet holds the hashes of the names of a header's lines, to tell
// whether a name repeats, in time linear in the lines: open addressing,
// on the stack. Hashes, not the names: a slice of the caller's bytes kept
// here would move them to the heap.
type nameSet struct {
	slots [128]uint64 // 0: empty
	n     int
}

// add adds name, one line's, and reports whether it repeats: a name
// added before (or, once in 2^64, another of the same hash), or any name
// once the set holds 96, which costs the caller a rebuild, not a mistake.
func (s *nameSet) add(name []byte) (repeat bool) {
	if s.n == 96 {
		return true
	}
	h := uint64(14695981039346656037) // FNV-1a, of the name in lower case
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h = (h ^ uint64(c)) * 1099511628211
	}
	h |= 1
	for i := h; ; i++ {
		switch s.slots[i%128] {
		case 0:
			s.slots[i%128] = h
			s.n++
			return false
		case h:
			return true
		}
	}
}

// addKey appends k to keys, the keys as stored of the lines to delete,
// unless it is there: fasthttp deletes by exact key where names are not
// normalised.
func addKey(keys [][]byte, k []byte) [][]byte {
	for _, have := range keys {
		if bytes.Equal(have, k) {
			return keys
		}
	}
	return append(keys, k)
}

// DelRequest deletes from h, which normalises its names (fasthttp's
// default), the lines whose names are in names; raw is
// h's bytes, as h.AppendBytes writes them (the caller's, which it may
// have read already). Where a name left has two lines, h is read anew
// from raw less the deleted lines, keeping its body's length: its cookies
// then stay as sent (re-adding a Cookie line through fasthttp parses and
// re-writes it). Should fasthttp not read back what it wrote, the lines are
// deleted with its Del.
func DelRequest(h *fasthttp.RequestHeader, raw []byte, names Names) {
	var left nameSet
	repeat := false
	var found uint64 // bit i: the i-th of names is there (the 63rd: one from it on)
	for k, _, rest, ok := Next(Of(raw)); ok; k, _, rest, ok = Next(rest) {
		if i := names.Index(k); i >= 0 {
			found |= 1 << min(i, 63)
		} else if !repeat {
			repeat = left.add(k)
		}
	}
	if found == 0 {
		return
	}
	if repeat && reread(h, raw, names) {
		return
	}
	for rest, i := names[min(len(names), 8):], 0; len(rest) > 0; i++ {
		l := int(rest[0])
		if found&(1<<min(i, 63)) != 0 {
			h.DelBytes(rest[1 : 1+l]) // a request's names are normalised: Del finds them
		}
		rest = rest[1+l:]
	}
}

// reread reads h anew from raw, its bytes, less the lines of names.
func reread(h *fasthttp.RequestHeader, raw []byte, names Names) bool {
	r := rereads.Get().(*rereading)
	defer rereads.Put(r)
	r.b = r.b[:0]
	for rest := raw; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, crlf)
		if k, _, ok := bytes.Cut(line, []byte{':'}); ok && len(r.b) > 0 && names.Has(k) {
			continue
		}
		r.b = append(append(r.b, line...), crlf...)
	}
	r.rd.Reset(r.b)
	if r.br == nil || r.br.Size() < len(r.b) {
		r.br = bufio.NewReaderSize(&r.rd, max(len(r.b), 4<<10))
	} else {
		r.br.Reset(&r.rd)
	}
	if r.h.Read(r.br) != nil {
		return false
	}
	size, typed := h.ContentLength(), len(h.ContentType()) > 0
	r.h.CopyTo(h)
	if size < 0 && h.ContentLength() != size { // a Transfer-Encoding line deleted
		h.SetContentLength(size)
	}
	if !typed { // raw has fasthttp's default, application/octet-stream
		h.SetContentTypeBytes(nil)
	}
	return true
}

// rereading is what reread uses, pooled: a header read anew takes its
// lines' buffers from the one before.
type rereading struct {
	b  []byte
	rd bytes.Reader
	br *bufio.Reader
	h  fasthttp.RequestHeader
}

var rereads = sync.Pool{New: func() any { return new(rereading) }}

// DelResponse deletes from h the lines whose names are in names. Where a
// name left has two lines, each line of a name that fasthttp keeps in its
// list of lines is deleted and added again, in order; those it holds apart
// (Content-Type, Content-Length, Content-Encoding, Server, Set-Cookie,
// Trailer) keep their order anyway, and Connection, Transfer-Encoding and
// Date, which it writes itself, are left where they are.
func DelResponse(h *fasthttp.ResponseHeader, names Names) {
	var delArr [16][]byte
	del := delArr[:0]
	for k := range h.All() {
		if names.Has(k) {
			del = addKey(del, k)
		}
	}
	if len(del) == 0 {
		return // most often, for a site's rules: one cheap walk
	}
	var left nameSet
	repeat := false
	for k := range h.All() {
		if !repeat && !names.Has(k) && !apart(k) {
			repeat = left.add(k)
		}
	}
	var b []byte // the lines to add again, each name and value followed by a zero byte
	if repeat {
		for k, v := range h.All() {
			if !names.Has(k) && !apart(k) {
				b = append(append(append(append(b, k...), 0), v...), 0)
			}
		}
	}
	for _, k := range del {
		h.DelBytes(k)
	}
	if b == nil {
		return
	}
	for rest := b; len(rest) > 0; {
		var k []byte
		k, rest, _ = bytes.Cut(rest, []byte{0})
		h.DelBytes(k)
		_, rest, _ = bytes.Cut(rest, []byte{0})
	}
	for rest := b; len(rest) > 0; {
		var k, v []byte
		k, rest, _ = bytes.Cut(rest, []byte{0})
		v, rest, _ = bytes.Cut(rest, []byte{0})
		h.AddBytesKV(k, v)
	}
}

// apart reports whether fasthttp keeps a response header of name apart
// from its list of lines, or writes it itself: DelResponse leaves those
// be.
func apart(name []byte) bool {
	for _, s := range apartNames {
		if httpsyntax.EqualFoldASCII(name, s) {
			return true
		}
	}
	return false
}

var apartNames = []string{
	fasthttp.HeaderContentType, fasthttp.HeaderContentLength, fasthttp.HeaderContentEncoding, fasthttp.HeaderServer,
	fasthttp.HeaderSetCookie, fasthttp.HeaderTrailer, fasthttp.HeaderConnection, fasthttp.HeaderTransferEncoding,
	fasthttp.HeaderDate,
}
