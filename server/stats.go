package server

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/tune"
)

// counters are the server's live counts: atomics only, so counting costs
// no lock and no allocation on the request path.
type counters struct {
	accepted atomic.Uint64
	open     atomic.Int64
	idle     atomic.Int64
	parked   atomic.Int64
	parks    atomic.Uint64
	// memoryReleases counts the poller's returns of freed memory.
	memoryReleases atomic.Uint64
	handshakes     atomic.Uint64
	requests       atomic.Uint64
	responses      [6]atomic.Uint64 // by class, 1 to 5
	panics         atomic.Uint64

	closedBytesIn  atomic.Uint64
	closedBytesOut atomic.Uint64

	handshakeFailures struct {
		timeout, version, plaintext, peerRejected, closed, other atomic.Uint64
		unknownName                                              atomic.Uint64
	}
	rejected struct {
		maxConns, maxConnsPerIP, onConn                              atomic.Uint64
		headerTooLarge, bodyTooLarge, timeout, badRequest            atomic.Uint64
		method, version, expectation, headerSyntax, transferEncoding atomic.Uint64
		proxyMissing, proxyInvalid, proxyUntrusted, proxyTimeout     atomic.Uint64
	}
}

// Stats is a snapshot of what a Server has done since New.
type Stats struct {
	Accepted uint64 // TCP connections accepted
	Open     int64  // connections open now
	Idle     int64  // open connections waiting for their next request
	Parked   int64  // open connections waiting, for their next request or their first, with no goroutine (IdleParkAfter)
	Parks    uint64 // times a connection was parked
	// MemoryReleases counts the times the server returned freed memory to
	// the system after a burst of parked connections.
	MemoryReleases uint64
	Handshakes     uint64 // TLS handshakes completed

	HandshakeFailures HandshakeFailures

	Requests  uint64    // requests answered, error answers included
	Responses [6]uint64 // responses by class: Responses[2] counts 2xx
	Panics    uint64    // handler panics, each answered with a 500

	BytesIn  uint64 // request bytes read, after TLS
	BytesOut uint64 // response bytes written, before TLS

	Rejected Rejections

	AccessLogDropped uint64 // access log lines dropped because the writer fell behind

	// Tune adds up the listeners' counters: option failures and accept
	// errors waited out.
	Tune tune.Stats
}

// HandshakeFailures counts failed TLS handshakes by reason.
type HandshakeFailures struct {
	Timeout      uint64 // no complete handshake within HandshakeTimeout
	Version      uint64 // the client offered only versions below TLS.MinVersion
	Plaintext    uint64 // plain HTTP on the TLS port, answered with a 400
	PeerRejected uint64 // the client aborted with an alert, such as an untrusted certificate
	UnknownName  uint64 // TLS.StrictSNI: no certificate for the server name, or none given
	Closed       uint64 // the client closed the connection
	Other        uint64
}

// Rejections counts what a limit refused.
type Rejections struct {
	MaxConns       uint64 // connections closed at once: MaxConns reached
	MaxConnsPerIP  uint64 // connections closed at once: MaxConnsPerIP reached
	OnConn         uint64 // connections closed because OnConn returned an error
	HeaderTooLarge uint64 // 431: MaxHeaderBytes
	BodyTooLarge   uint64 // 413: MaxBodyBytes
	Timeout        uint64 // 408: a request not read within its timeout
	BadRequest     uint64 // 400: a request fasthttp could not parse

	// What check refused, that fasthttp's parser lets through.
	Method           uint64 // 405: TRACE or CONNECT
	Version          uint64 // 505: a version other than HTTP/1.0 and 1.1
	Expectation      uint64 // 417: an Expect other than 100-continue
	HeaderSyntax     uint64 // 400: obs-fold, a bad field name, a control byte in a value, a malformed version
	TransferEncoding uint64 // 400 or 501: Transfer-Encoding other than one "chunked" in HTTP/1.1, or with Content-Length

	// Connections reset, with nothing written, for their PROXY protocol
	// header (Config.ProxyProtocol).
	ProxyHeaderMissing   uint64 // a peer in ProxyProtocolFrom sent none
	ProxyHeaderInvalid   uint64 // malformed, or cut short by the peer's close
	ProxyHeaderUntrusted uint64 // sent by a peer outside ProxyProtocolFrom
	ProxyHeaderTimeout   uint64 // not whole within ProxyProtocolTimeout
}

// Stats returns the server's counters. Bytes include those of the open
// connections, so it walks them: call it at scrape rates, not per request.
func (s *Server) Stats() Stats {
	c := &s.stats
	st := Stats{
		Accepted:       c.accepted.Load(),
		Open:           c.open.Load(),
		Idle:           c.idle.Load(),
		Parked:         c.parked.Load(),
		Parks:          c.parks.Load(),
		MemoryReleases: c.memoryReleases.Load(),
		Handshakes:     c.handshakes.Load(),
		HandshakeFailures: HandshakeFailures{
			Timeout:      c.handshakeFailures.timeout.Load(),
			Version:      c.handshakeFailures.version.Load(),
			Plaintext:    c.handshakeFailures.plaintext.Load(),
			PeerRejected: c.handshakeFailures.peerRejected.Load(),
			UnknownName:  c.handshakeFailures.unknownName.Load(),
			Closed:       c.handshakeFailures.closed.Load(),
			Other:        c.handshakeFailures.other.Load(),
		},
		Requests: c.requests.Load(),
		Panics:   c.panics.Load(),
		Rejected: Rejections{
			MaxConns:       c.rejected.maxConns.Load(),
			MaxConnsPerIP:  c.rejected.maxConnsPerIP.Load(),
			OnConn:         c.rejected.onConn.Load(),
			HeaderTooLarge: c.rejected.headerTooLarge.Load(),
			BodyTooLarge:   c.rejected.bodyTooLarge.Load(),
			Timeout:        c.rejected.timeout.Load(),
			BadRequest:     c.rejected.badRequest.Load(),

			Method:           c.rejected.method.Load(),
			Version:          c.rejected.version.Load(),
			Expectation:      c.rejected.expectation.Load(),
			HeaderSyntax:     c.rejected.headerSyntax.Load(),
			TransferEncoding: c.rejected.transferEncoding.Load(),

			ProxyHeaderMissing:   c.rejected.proxyMissing.Load(),
			ProxyHeaderInvalid:   c.rejected.proxyInvalid.Load(),
			ProxyHeaderUntrusted: c.rejected.proxyUntrusted.Load(),
			ProxyHeaderTimeout:   c.rejected.proxyTimeout.Load(),
		},
	}
	for i := range st.Responses {
		st.Responses[i] = c.responses[i].Load()
	}
	s.mu.Lock()
	for cn := range s.conns {
		st.BytesIn += cn.bytesIn.Load()
		st.BytesOut += cn.bytesOut.Load()
	}
	s.mu.Unlock()
	st.BytesIn += c.closedBytesIn.Load()
	st.BytesOut += c.closedBytesOut.Load()
	for _, l := range s.lns {
		st.Tune = st.Tune.Add(l.tl.Stats())
	}
	if s.accessLog != nil {
		st.AccessLogDropped = s.accessLog.Dropped()
	}
	return st
}

// WritePrometheus writes the server's Stats in the Prometheus text format,
// as metrics named fastserve_*, then calls Config.Metrics.
func (s *Server) WritePrometheus(w io.Writer) {
	st := s.Stats()
	metrics.WriteCounterUint64(w, "fastserve_connections_accepted_total", st.Accepted)
	metrics.WriteGaugeUint64(w, "fastserve_connections_open", uint64(max(st.Open, 0)))
	metrics.WriteGaugeUint64(w, "fastserve_connections_idle", uint64(max(st.Idle, 0)))
	metrics.WriteGaugeUint64(w, "fastserve_connections_parked", uint64(max(st.Parked, 0)))
	metrics.WriteCounterUint64(w, "fastserve_connection_parks_total", st.Parks)
	metrics.WriteCounterUint64(w, "fastserve_memory_releases_total", st.MemoryReleases)
	metrics.WriteCounterUint64(w, "fastserve_tls_handshakes_total", st.Handshakes)
	hf := st.HandshakeFailures
	for _, f := range []struct {
		reason string
		v      uint64
	}{
		{"timeout", hf.Timeout}, {"version", hf.Version}, {"plaintext", hf.Plaintext},
		{"peer_rejected", hf.PeerRejected}, {"unknown_name", hf.UnknownName}, {"closed", hf.Closed}, {"other", hf.Other},
	} {
		metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_tls_handshake_failures_total{reason=%q}`, f.reason), f.v)
	}
	metrics.WriteCounterUint64(w, "fastserve_requests_total", st.Requests)
	for class := 1; class <= 5; class++ {
		metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_responses_total{class="%dxx"}`, class), st.Responses[class])
	}
	metrics.WriteCounterUint64(w, "fastserve_handler_panics_total", st.Panics)
	metrics.WriteCounterUint64(w, "fastserve_bytes_in_total", st.BytesIn)
	metrics.WriteCounterUint64(w, "fastserve_bytes_out_total", st.BytesOut)
	r := st.Rejected
	for _, f := range []struct {
		limit string
		v     uint64
	}{
		{"max_conns", r.MaxConns}, {"max_conns_per_ip", r.MaxConnsPerIP}, {"on_conn", r.OnConn},
		{"header_too_large", r.HeaderTooLarge}, {"body_too_large", r.BodyTooLarge},
		{"timeout", r.Timeout}, {"bad_request", r.BadRequest},
		{"method", r.Method}, {"version", r.Version}, {"expectation", r.Expectation},
		{"header_syntax", r.HeaderSyntax}, {"transfer_encoding", r.TransferEncoding},
		{"proxy_header_missing", r.ProxyHeaderMissing}, {"proxy_header_invalid", r.ProxyHeaderInvalid},
		{"proxy_header_untrusted", r.ProxyHeaderUntrusted}, {"proxy_header_timeout", r.ProxyHeaderTimeout},
	} {
		metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_rejected_total{limit=%q}`, f.limit), f.v)
	}
	metrics.WriteCounterUint64(w, "fastserve_tune_option_failures_total", st.Tune.OptionFailures)
	metrics.WriteCounterUint64(w, "fastserve_accept_errors_retried_total", st.Tune.TransientErrors)
	metrics.WriteCounterUint64(w, "fastserve_access_log_dropped_total", st.AccessLogDropped)
	for _, e := range s.tls.expiries() {
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`fastserve_tls_certificate_expiry_seconds{name=%q}`, e.name), uint64(max(e.notAfter.Unix(), 0)))
	}
	if s.tls.acme != nil {
		s.tls.acme.writePrometheus(w)
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics(w)
	}
}

// MetricsHandler serves WritePrometheus, for an admin listener.
func (s *Server) MetricsHandler(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	s.WritePrometheus(ctx)
}
