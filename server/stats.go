package server

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/tune"
)

// A Reason is why the server refused a connection or a request. Each has
// a counter (Stats.Rejected) and a name (reasonNames), which /metrics
// shows as fastserve_rejected_total{limit="NAME"} and the logs as
// reason=NAME. Adding a reason is two edits: a constant, and its name.
type Reason uint8

const (
	RejectMaxConns       Reason = iota // a connection closed at once: MaxConns reached
	RejectMaxConnsPerIP                // a connection closed at once: MaxConnsPerIP reached
	RejectOnConn                       // a connection closed because OnConn returned an error
	RejectHeaderTooLarge               // 431: MaxHeaderBytes
	RejectBodyTooLarge                 // 413: MaxBodyBytes
	RejectTimeout                      // 408: a request not read within its timeout
	RejectBadRequest                   // 400: a request fasthttp could not parse

	// What the request gate refuses, that fasthttp's parser lets through.
	RejectMethod           // 405: TRACE or CONNECT
	RejectVersion          // 505: a version other than HTTP/1.0 and 1.1
	RejectExpectation      // 417: an Expect other than 100-continue
	RejectHeaderSyntax     // 400: obs-fold, a bad field name, a control byte in a value, a bare LF, a malformed version
	RejectTransferEncoding // 400 or 501: Transfer-Encoding other than one "chunked" in HTTP/1.1, or with Content-Length

	// Connections reset, with nothing written, for their PROXY protocol
	// header (Config.ProxyProtocol).
	RejectProxyHeaderMissing   // a peer in ProxyProtocolFrom sent none
	RejectProxyHeaderInvalid   // malformed, or cut short by the peer's close
	RejectProxyHeaderUntrusted // sent by a peer outside ProxyProtocolFrom
	RejectProxyHeaderTimeout   // not whole within ProxyProtocolTimeout

	numReasons
)

var reasonNames = [numReasons]string{
	RejectMaxConns:             "max_conns",
	RejectMaxConnsPerIP:        "max_conns_per_ip",
	RejectOnConn:               "on_conn",
	RejectHeaderTooLarge:       "header_too_large",
	RejectBodyTooLarge:         "body_too_large",
	RejectTimeout:              "timeout",
	RejectBadRequest:           "bad_request",
	RejectMethod:               "method",
	RejectVersion:              "version",
	RejectExpectation:          "expectation",
	RejectHeaderSyntax:         "header_syntax",
	RejectTransferEncoding:     "transfer_encoding",
	RejectProxyHeaderMissing:   "proxy_header_missing",
	RejectProxyHeaderInvalid:   "proxy_header_invalid",
	RejectProxyHeaderUntrusted: "proxy_header_untrusted",
	RejectProxyHeaderTimeout:   "proxy_header_timeout",
}

// String is the reason's name in /metrics and the logs.
func (r Reason) String() string { return reasonNames[r] }

// Rejections counts refusals by Reason: Rejections[RejectBodyTooLarge].
type Rejections [numReasons]uint64

// A HandshakeFailure is why a TLS handshake failed. Each has a counter
// (Stats.HandshakeFailures) and a name, which /metrics shows as
// fastserve_tls_handshake_failures_total{reason="NAME"}.
type HandshakeFailure uint8

const (
	FailTimeout      HandshakeFailure = iota // no complete handshake within HandshakeTimeout
	FailVersion                              // the client offered only versions below TLS.MinVersion
	FailPlaintext                            // plain HTTP on the TLS port, answered with a 400
	FailPeerRejected                         // the client aborted with an alert, such as an untrusted certificate
	FailUnknownName                          // TLS.StrictSNI: no certificate for the server name, or none given
	FailClosed                               // the client closed the connection
	FailOther

	numFailures
)

var failureNames = [numFailures]string{"timeout", "version", "plaintext", "peer_rejected", "unknown_name", "closed", "other"}

// String is the failure's name in /metrics.
func (f HandshakeFailure) String() string { return failureNames[f] }

// HandshakeFailures counts failed TLS handshakes by HandshakeFailure:
// HandshakeFailures[FailTimeout].
type HandshakeFailures [numFailures]uint64

// counters are the server's live counts: atomics only, so counting costs
// no lock and no allocation on the request path.
type counters struct {
	accepted, parks, handshakes, requests, panics atomic.Uint64
	open, idle, parked                            atomic.Int64
	memoryReleases                                atomic.Uint64    // the poller's returns of freed memory
	responses                                     [6]atomic.Uint64 // by class, 1 to 5
	closedBytesIn, closedBytesOut                 atomic.Uint64

	handshakeFailures [numFailures]atomic.Uint64
	rejected          [numReasons]atomic.Uint64
}

// reject counts a refusal.
func (c *counters) reject(r Reason) { c.rejected[r].Add(1) }

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

	BytesIn, BytesOut uint64 // request bytes read after TLS, response bytes written before it

	Rejected Rejections

	AccessLogDropped uint64 // access log lines dropped because the writer fell behind

	// Tune adds up the listeners' counters: option failures and accept
	// errors waited out.
	Tune tune.Stats
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
		Requests:       c.requests.Load(),
		Panics:         c.panics.Load(),
	}
	for i := range st.HandshakeFailures {
		st.HandshakeFailures[i] = c.handshakeFailures[i].Load()
	}
	for i := range st.Rejected {
		st.Rejected[i] = c.rejected[i].Load()
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
	for f, n := range st.HandshakeFailures {
		metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_tls_handshake_failures_total{reason=%q}`, HandshakeFailure(f)), n)
	}
	metrics.WriteCounterUint64(w, "fastserve_requests_total", st.Requests)
	for class := 1; class <= 5; class++ {
		metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_responses_total{class="%dxx"}`, class), st.Responses[class])
	}
	metrics.WriteCounterUint64(w, "fastserve_handler_panics_total", st.Panics)
	metrics.WriteCounterUint64(w, "fastserve_bytes_in_total", st.BytesIn)
	metrics.WriteCounterUint64(w, "fastserve_bytes_out_total", st.BytesOut)
	for r, n := range st.Rejected {
		metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_rejected_total{limit=%q}`, Reason(r)), n)
	}
	metrics.WriteCounterUint64(w, "fastserve_tune_option_failures_total", st.Tune.OptionFailures)
	metrics.WriteCounterUint64(w, "fastserve_accept_errors_retried_total", st.Tune.TransientErrors)
	metrics.WriteCounterUint64(w, "fastserve_access_log_dropped_total", st.AccessLogDropped)
	for _, e := range certs.Expiries(s.tls.files, s.tls.acme) {
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`fastserve_tls_certificate_expiry_seconds{name=%q}`, e.Name), uint64(max(e.NotAfter.Unix(), 0)))
	}
	if s.tls.acme != nil {
		s.tls.acme.WritePrometheus(w)
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
