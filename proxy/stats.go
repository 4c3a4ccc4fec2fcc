package proxy

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/fastserve/fastserve/tune"
)

// upstreamCounters are an upstream's live counts: atomics only.
type upstreamCounters struct {
	requests       atomic.Uint64
	errors         [errKinds]atomic.Uint64
	latency        latencyHistogram
	healthChecks   atomic.Uint64
	healthFailures atomic.Uint64
	tunnelsTotal   atomic.Uint64
}

// latencyBuckets are the upper bounds of the latency histogram, in
// seconds: Prometheus's default buckets.
var latencyBuckets = [...]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// latencyHistogram counts durations in latencyBuckets, without a lock.
type latencyHistogram struct {
	counts [len(latencyBuckets) + 1]atomic.Uint64 // the last one is +Inf
	sumNs  atomic.Int64
}

func (h *latencyHistogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && s > latencyBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// Stats is a snapshot of what a Proxy has done since New.
type Stats struct {
	Upstreams []UpstreamStats // in the order the routes first name them
}

// UpstreamStats is what one upstream has done.
type UpstreamStats struct {
	URL      string // as in the routes, scheme://host[:port]
	Up       bool   // not marked down by a failed connect or health check
	InFlight int64  // requests waiting for the upstream's answer now
	Conns    int    // connections open to it

	Requests uint64 // requests sent, retries included

	// Errors counts failed requests by kind, and 5xx answers.
	Errors UpstreamErrors

	// Latency is the time to the upstream's response head, of the
	// requests it answered: Latency.Counts[i] counts those of at most
	// LatencyBuckets[i] seconds (cumulative, as Prometheus's le buckets),
	// the last one all of them.
	Latency LatencyHistogram

	HealthChecks        uint64
	HealthCheckFailures uint64

	// Tunnels are the upgraded connections (WebSocket) open to it now,
	// and TunnelsTotal all it has had.
	Tunnels      int64
	TunnelsTotal uint64
}

// UpstreamErrors counts an upstream's failures by kind.
type UpstreamErrors struct {
	Refused        uint64 // 502: connection refused
	ConnectTimeout uint64 // 504: no connection within ConnectTimeout
	TLS            uint64 // 502: the TLS handshake failed
	Connect        uint64 // 502: another failure to connect
	Busy           uint64 // 503: its MaxConns connections busy for ConnectTimeout
	Timeout        uint64 // 504: no answer within ReadTimeout, or a write stalled
	Reset          uint64 // 502: the connection closed before the answer
	Protocol       uint64 // 502: an answer that is not HTTP, or a head over MaxResponseHeaderBytes
	Status5xx      uint64 // answers with a 5xx status, passed to the client
}

// LatencyHistogram is a cumulative histogram of durations.
type LatencyHistogram struct {
	Buckets []float64 // upper bounds in seconds, then +Inf
	Counts  []uint64  // cumulative count at or under each bound
	Sum     time.Duration
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	st := Stats{Upstreams: make([]UpstreamStats, 0, len(p.upstreams))}
	for _, u := range p.upstreams {
		c := &u.stats
		us := UpstreamStats{
			URL:      u.url,
			Up:       !u.down.Load(),
			InFlight: u.inflight.Load(),
			Conns:    u.hc.ConnsCount(),
			Requests: c.requests.Load(),
			Errors: UpstreamErrors{
				Refused:        c.errors[errRefused].Load(),
				ConnectTimeout: c.errors[errConnectTimeout].Load(),
				TLS:            c.errors[errTLS].Load(),
				Connect:        c.errors[errConnect].Load(),
				Busy:           c.errors[errBusy].Load(),
				Timeout:        c.errors[errTimeout].Load(),
				Reset:          c.errors[errReset].Load(),
				Protocol:       c.errors[errProtocol].Load(),
				Status5xx:      c.errors[errStatus5xx].Load(),
			},
			HealthChecks:        c.healthChecks.Load(),
			HealthCheckFailures: c.healthFailures.Load(),
			Tunnels:             p.cfg.Tunnels.count(p.cfg.Labels, u.url),
			TunnelsTotal:        c.tunnelsTotal.Load(),
		}
		h := &us.Latency
		h.Buckets = append(latencyBuckets[:len(latencyBuckets):len(latencyBuckets)], inf)
		var cum uint64
		for i := range c.latency.counts {
			cum += c.latency.counts[i].Load()
			h.Counts = append(h.Counts, cum)
		}
		h.Sum = time.Duration(c.latency.sumNs.Load())
		st.Upstreams = append(st.Upstreams, us)
	}
	return st
}

var inf = math.Inf(1)

// WritePrometheus writes the proxy's Stats in the Prometheus text format,
// as metrics named fastserve_upstream_*, labeled by upstream URL.
func (p *Proxy) WritePrometheus(w io.Writer) { p.WritePrometheusLabeled(w, "") }

// WritePrometheusLabeled is WritePrometheus with labels (such as
// site="example.com"; empty for none) before the upstream label of every
// metric, to tell apart proxies that have upstreams in common.
func (p *Proxy) WritePrometheusLabeled(w io.Writer, labels string) {
	for _, us := range p.Stats().Upstreams {
		l := fmt.Sprintf("upstream=%q", us.URL)
		if labels != "" {
			l = labels + "," + l
		}
		up := uint64(0)
		if us.Up {
			up = 1
		}
		metrics.WriteGaugeUint64(w, "fastserve_upstream_up{"+l+"}", up)
		metrics.WriteGaugeUint64(w, "fastserve_upstream_in_flight{"+l+"}", uint64(max(us.InFlight, 0)))
		metrics.WriteGaugeUint64(w, "fastserve_upstream_connections{"+l+"}", uint64(max(us.Conns, 0)))
		metrics.WriteCounterUint64(w, "fastserve_upstream_requests_total{"+l+"}", us.Requests)
		e := us.Errors
		for _, k := range []struct {
			kind string
			v    uint64
		}{
			{"refused", e.Refused}, {"connect_timeout", e.ConnectTimeout}, {"tls", e.TLS}, {"connect", e.Connect},
			{"busy", e.Busy}, {"timeout", e.Timeout}, {"reset", e.Reset}, {"protocol", e.Protocol}, {"status5xx", e.Status5xx},
		} {
			metrics.WriteCounterUint64(w, fmt.Sprintf("fastserve_upstream_errors_total{%s,kind=%q}", l, k.kind), k.v)
		}
		h := us.Latency
		for i, b := range h.Buckets {
			le := "+Inf"
			if i < len(latencyBuckets) {
				le = strconv.FormatFloat(b, 'g', -1, 64)
			}
			metrics.WriteCounterUint64(w, fmt.Sprintf("fastserve_upstream_response_seconds_bucket{%s,le=%q}", l, le), h.Counts[i])
		}
		metrics.WriteCounterFloat64(w, "fastserve_upstream_response_seconds_sum{"+l+"}", h.Sum.Seconds())
		metrics.WriteCounterUint64(w, "fastserve_upstream_response_seconds_count{"+l+"}", h.Counts[len(h.Counts)-1])
		metrics.WriteCounterUint64(w, "fastserve_upstream_health_checks_total{"+l+"}", us.HealthChecks)
		metrics.WriteCounterUint64(w, "fastserve_upstream_health_check_failures_total{"+l+"}", us.HealthCheckFailures)
		metrics.WriteGaugeUint64(w, "fastserve_upstream_tunnels{"+l+"}", uint64(max(us.Tunnels, 0)))
		metrics.WriteCounterUint64(w, "fastserve_upstream_tunnels_total{"+l+"}", us.TunnelsTotal)
	}
}

// UpstreamConn is a connection open to an upstream, and its socket as the
// kernel holds it, for an operator's /debug/upstreams: the options Tune
// set, read back.
type UpstreamConn struct {
	Upstream    string             `json:"upstream"`
	Local       string             `json:"local"`
	Remote      string             `json:"remote"`
	Tunnel      bool               `json:"tunnel,omitempty"` // an upgraded connection (WebSocket)
	Socket      *tune.SocketReport `json:"socket,omitempty"`
	SocketError string             `json:"socket_error,omitempty"`
}

// Conns describes the connections open to the upstreams, with their
// sockets read back from the kernel (tune.Inspect).
func (p *Proxy) Conns() []UpstreamConn {
	p.conns.mu.Lock()
	open := make([]*timedConn, 0, len(p.conns.conns))
	for c := range p.conns.conns {
		open = append(open, c)
	}
	p.conns.mu.Unlock()
	return describeConns(open)
}

func describeConns(open []*timedConn) []UpstreamConn {
	out := make([]UpstreamConn, 0, len(open))
	for _, c := range open {
		uc := UpstreamConn{Upstream: c.url, Local: c.LocalAddr().String(), Remote: c.RemoteAddr().String(), Tunnel: c.tunnel.Load()}
		if st, err := tune.Inspect(c.Conn); err != nil {
			uc.SocketError = err.Error()
		} else {
			uc.Socket = st.Report()
		}
		out = append(out, uc)
	}
	slices.SortFunc(out, func(a, b UpstreamConn) int { return strings.Compare(a.Upstream+a.Local, b.Upstream+b.Local) })
	return out
}
