package sites

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// latencyBuckets are the upper bounds of the request latency histogram,
// in seconds: the server's own time to a response head, from the
// request's first byte read.
var latencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// classes counts a route's answers by status class, 1xx to 5xx.
type classes [5]atomic.Uint64

// siteStats are one site's counts: its answers by route and status
// class, and its latency. They live in the Router's registry under the
// site's label, so that a reload keeps counting where it was.
type siteStats struct {
	label   string              // the site's first host, or "default"
	routes  map[string]*classes // by route prefix; "" for what no route takes
	buckets [len(latencyBuckets) + 1]atomic.Uint64
	sumNs   atomic.Uint64

	limits map[string]*rateCounts // the rate limits' decisions, by route prefix; "" for the site's
}

// registry holds the sites' counts across reloads. Labels are bounded by
// the configuration (site names, route prefixes), never by what clients
// send; a site or route a reload removes stops counting but keeps its
// last values until the process ends.
type registry struct {
	mu    sync.Mutex
	sites map[string]*siteStats
}

// stats is the siteStats of label, made on first use. Build time only.
func (g *registry) stats(label string) *siteStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sites == nil {
		g.sites = map[string]*siteStats{}
	}
	st := g.sites[label]
	if st == nil {
		st = &siteStats{label: label, routes: map[string]*classes{}}
		g.sites[label] = st
	}
	return st
}

// route is the counts of a route prefix of st, made on first use. Build
// time only (under the registry's lock).
func (g *registry) route(st *siteStats, prefix string) *classes {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := st.routes[prefix]
	if c == nil {
		c = &classes{}
		st.routes[prefix] = c
	}
	return c
}

// count records an answer: its route's status class, and its latency.
func (st *siteStats) count(c *classes, ctx *fasthttp.RequestCtx) {
	class := ctx.Response.StatusCode()/100 - 1
	if class < 0 || class > 4 {
		class = 4
	}
	c[class].Add(1)
	d := time.Since(ctx.Time())
	i := 0
	for i < len(latencyBuckets) && d.Seconds() > latencyBuckets[i] {
		i++
	}
	st.buckets[i].Add(1)
	st.sumNs.Add(uint64(max(d, 0)))
}

// writePrometheus writes every site's counts.
func (g *registry) writePrometheus(w io.Writer) {
	g.mu.Lock()
	labels := make([]string, 0, len(g.sites))
	for l := range g.sites {
		labels = append(labels, l)
	}
	g.mu.Unlock()
	slices.Sort(labels)
	for _, l := range labels {
		g.mu.Lock()
		st := g.sites[l]
		prefixes := make([]string, 0, len(st.routes))
		for p := range st.routes {
			prefixes = append(prefixes, p)
		}
		g.mu.Unlock()
		slices.Sort(prefixes)
		for _, p := range prefixes {
			g.mu.Lock()
			c := st.routes[p]
			g.mu.Unlock()
			for class := range c {
				metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_site_requests_total{site=%q,route=%q,code="%dxx"}`, l, p, class+1), c[class].Load())
			}
		}
		var cum uint64
		for i := range st.buckets {
			cum += st.buckets[i].Load()
			le := "+Inf"
			if i < len(latencyBuckets) {
				le = fmt.Sprint(latencyBuckets[i])
			}
			metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_site_request_duration_seconds_bucket{site=%q,le=%q}`, l, le), cum)
		}
		metrics.WriteCounterFloat64(w, fmt.Sprintf(`fastserve_site_request_duration_seconds_sum{site=%q}`, l), float64(st.sumNs.Load())/1e9)
		metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_site_request_duration_seconds_count{site=%q}`, l), cum)
	}
}
