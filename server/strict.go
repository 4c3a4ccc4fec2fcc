package server

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/httpsyntax"
)

// A refusal is the answer to a request fastserve will not serve, and the
// reason it is counted under.
type refusal struct {
	status int
	reason Reason
	text   string
}

var (
	refuseMethod       = &refusal{fasthttp.StatusMethodNotAllowed, RejectMethod, "Method Not Allowed\n"}
	refuseVersion      = &refusal{fasthttp.StatusHTTPVersionNotSupported, RejectVersion, "HTTP Version Not Supported\n"}
	refuseBadVersion   = &refusal{fasthttp.StatusBadRequest, RejectHeaderSyntax, "Bad Request: malformed HTTP version\n"}
	refuseExpect       = &refusal{fasthttp.StatusExpectationFailed, RejectExpectation, "Expectation Failed\n"}
	refuseObsFold      = &refusal{fasthttp.StatusBadRequest, RejectHeaderSyntax, "Bad Request: obsolete line folding\n"}
	refuseFieldName    = &refusal{fasthttp.StatusBadRequest, RejectHeaderSyntax, "Bad Request: invalid header field name\n"}
	refuseFieldValue   = &refusal{fasthttp.StatusBadRequest, RejectHeaderSyntax, "Bad Request: control character in a header field value\n"}
	refuseTEList       = &refusal{fasthttp.StatusBadRequest, RejectTransferEncoding, "Bad Request: Transfer-Encoding must be exactly chunked\n"}
	refuseTEUnknown    = &refusal{fasthttp.StatusNotImplemented, RejectTransferEncoding, "Not Implemented: unknown transfer coding\n"}
	refuseTEWithLength = &refusal{fasthttp.StatusBadRequest, RejectTransferEncoding, "Bad Request: both Transfer-Encoding and Content-Length\n"}
	refuseTEHTTP10     = &refusal{fasthttp.StatusBadRequest, RejectTransferEncoding, "Bad Request: Transfer-Encoding in HTTP/1.0\n"}
	refuseBodyTooLarge = &refusal{fasthttp.StatusRequestEntityTooLarge, RejectBodyTooLarge, "Request Entity Too Large\n"}
	refuseBareLF       = &refusal{fasthttp.StatusBadRequest, RejectHeaderSyntax, "Bad Request: line ends in LF, not CRLF\n"}
)

// check refuses, as nginx and RFC 9112 do, what fasthttp's parser lets
// through: TRACE and CONNECT, versions other than HTTP/1.0 and 1.1,
// expectations other than 100-continue, obsolete line folding, field names
// that are not tokens, control bytes in field values, and
// Transfer-Encoding other than exactly "chunked" once. The handler never
// sees a refused request; its connection is closed.
func check(h *fasthttp.RequestHeader) *refusal {
	if h.IsTrace() || h.IsConnect() {
		return refuseMethod
	}
	if r := checkVersion(h.Protocol()); r != nil {
		return r
	}
	if exp := h.Peek(fasthttp.HeaderExpect); exp != nil && !bytes.EqualFold(exp, []byte("100-continue")) {
		return refuseExpect
	}
	return checkRawHeaders(h.RawHeaders(), h.IsHTTP11())
}

// checkVersion accepts HTTP/1.0 and HTTP/1.1; another well-formed
// HTTP/x.y gets 505.
func checkVersion(p []byte) *refusal {
	if len(p) == 8 && string(p[:5]) == "HTTP/" && p[6] == '.' {
		if p[5] == '1' && (p[7] == '0' || p[7] == '1') {
			return nil
		}
		if isDigit(p[5]) && isDigit(p[7]) {
			return refuseVersion
		}
	}
	return refuseBadVersion
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// checkRawHeaders scans the header block as the client sent it: fasthttp
// has by then unfolded obs-fold, and dropped Content-Length beside
// "Transfer-Encoding: chunked" and Transfer-Encoding in HTTP/1.0, so only
// the raw block shows them.
func checkRawHeaders(raw []byte, http11 bool) *refusal {
	var te []byte
	teCount, lengths := 0, 0
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
			if i == 0 || line[i-1] != '\r' {
				return refuseBareLF // fasthttp accepts a bare LF inside the block
			}
			line = line[:i-1]
		} else {
			raw = nil
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return refuseObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return refuseFieldName
		}
		name, value := line[:colon], line[colon+1:]
		for _, c := range name {
			if !httpsyntax.IsTokenChar(c) {
				return refuseFieldName // whitespace before the colon included
			}
		}
		for _, c := range value {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return refuseFieldValue
			}
		}
		switch {
		case bytes.EqualFold(name, []byte(fasthttp.HeaderTransferEncoding)):
			teCount++
			te = bytes.TrimSpace(value)
		case bytes.EqualFold(name, []byte(fasthttp.HeaderContentLength)):
			lengths++
		}
	}
	switch {
	case teCount == 0:
		return nil
	case !http11:
		return refuseTEHTTP10
	case teCount > 1:
		return refuseTEList
	case lengths > 0:
		return refuseTEWithLength
	case bytes.EqualFold(te, []byte("chunked")):
		return nil
	case bytes.ContainsAny(te, ", \t"):
		return refuseTEList
	}
	return refuseTEUnknown
}
