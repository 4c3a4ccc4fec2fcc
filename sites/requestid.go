package sites

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/headerlines"
)

// HeaderRequestID carries a request's ID: from the client when it sent a
// valid one, else made by the server; sent upstream, in the response, and
// in the access log (so that one request can be followed through a
// balancer, fastserve and its upstream).
const HeaderRequestID = "X-Request-ID"

// A request ID the server makes is 8 random bytes drawn when the process
// starts and a counter, in hex: unique across processes and restarts,
// and a tenth of the cost of 16 random bytes per request. IDs are not
// secrets.
var (
	idPrefix  [8]byte
	idCounter atomic.Uint64
)

func init() { rand.Read(idPrefix[:]) }

// maxRequestID bounds a client's request ID.
const maxRequestID = 128

// requestID keeps a valid X-Request-ID of the client's, or sets one the
// server makes, on the request.
func requestID(ctx *fasthttp.RequestCtx) {
	var id []byte
	if ids := ctx.Request.Header.PeekAll(HeaderRequestID); len(ids) > 1 {
		// One line goes upstream, never a second one unchecked.
		var keep [maxRequestID]byte
		k := copy(keep[:], ids[0])
		del(&ctx.Request.Header, HeaderRequestID, namesRequestID) // the order of the lines left kept (headerlines)
		if validRequestID(keep[:k]) {
			ctx.Request.Header.SetCanonical(keyRequestID, keep[:k])
		}
		id = ctx.Request.Header.Peek(HeaderRequestID)
	} else if len(ids) == 1 {
		id = ids[0]
	}
	if !validRequestID(id) {
		var raw [16]byte
		var buf [32]byte
		copy(raw[:8], idPrefix[:])
		binary.BigEndian.PutUint64(raw[8:], idCounter.Add(1))
		hex.Encode(buf[:], raw[:])
		ctx.Request.Header.SetCanonical(keyRequestID, buf[:])
	}
}

// keyRequestID is HeaderRequestID as fasthttp normalises it, for the
// calls that take a key as it is (SetCanonical).
var keyRequestID = []byte("X-Request-Id")

var namesRequestID = headerlines.Names(nil).Add(keyRequestID)

// returnRequestID puts the request's ID on its response, once the
// handler is done (the proxy replaces the response with the upstream's).
// An upstream's answer may carry the ID already, in any case
// (X-Request-ID, x-request-id): that line goes, so that the client gets
// one.
func returnRequestID(ctx *fasthttp.RequestCtx) {
	headerlines.DelResponse(&ctx.Response.Header, namesRequestID)
	ctx.Response.Header.SetCanonical(keyRequestID, ctx.Request.Header.Peek(HeaderRequestID))
}

// validRequestID accepts 1 to 128 characters of letters, digits and
// "-._:/+=" (UUIDs, hex, base64, trace IDs), nothing a log or a header
// could be broken by.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > maxRequestID {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == ':' || c == '/' || c == '+' || c == '=':
		default:
			return false
		}
	}
	return true
}
