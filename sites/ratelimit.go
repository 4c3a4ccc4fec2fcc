package sites

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/ratelimit"
)

// A site's RateLimit and a route's are ratelimit.Configs: the zero value
// (no Rate) is no limit. A route's limit applies in addition to its
// site's, as two limit_req lines of nginx do: a request must pass both.
// Limits are judged after the site's redirects and before access rules,
// routes and files; a request past one is answered 429 Too Many Requests
// with Retry-After, with the site's (or route's) response header rules
// and its error page for 429, if it has one.

// limit is a site's or a route's Limiter, with its counts in the
// registry (kept across reloads, by site and route).
type limit struct {
	*ratelimit.Limiter
	counts *rateCounts
}

// rateCounts are a limit's decisions, by ratelimit.Result.
type rateCounts [ratelimit.DryRunLimited + 1]atomic.Uint64

// labeledLimit is a limit in use, with the labels of its metrics.
type labeledLimit struct {
	site, route string
	l           *ratelimit.Limiter
}

// limited judges ctx by the site's rate limit, then by its route's, rl,
// and answers 429 if one refuses it. A request the route's limit refuses
// is given back to the site's: it costs the client nothing of the site's
// budget.
func (s *site) limited(ctx *fasthttp.RequestCtx, rl *limit) bool {
	if s.limit == nil && rl == nil {
		return false
	}
	now := ctx.Time() // the request's arrival, read once for it
	if now.IsZero() {
		now = time.Now()
	}
	var siteKey ratelimit.Key
	charged := false
	if s.limit != nil {
		siteKey = s.limit.Key(ctx)
		r, wait := s.limit.Allow(siteKey, now)
		s.limit.counts[r].Add(1)
		if r == ratelimit.Limited {
			ratelimit.Reject(ctx, wait)
			return true
		}
		charged = r == ratelimit.Passed
	}
	if rl != nil {
		r, wait := rl.Allow(rl.Key(ctx), now)
		rl.counts[r].Add(1)
		if r == ratelimit.Limited {
			if charged {
				s.limit.Undo(siteKey)
			}
			ratelimit.Reject(ctx, wait)
			return true
		}
	}
	return false
}

// limit is the limit of c for the site st (the route prefix, or "" for
// the site's own): the previous tree's Limiter for the same site, route
// and configuration, with its clients' budgets, or a new one; nil for
// no limit.
func (t *tree) limit(st *site, prefix string, c ratelimit.Config) (*limit, error) {
	if c == (ratelimit.Config{}) {
		return nil, nil
	}
	key := fmt.Sprintf("%q %q %+v", strings.ToLower(st.name.Name), prefix, c)
	l := t.limiters[key]
	if l == nil && t.prev != nil {
		l = t.prev.limiters[key]
	}
	if l == nil {
		var err error
		if l, err = ratelimit.New(c); err != nil {
			return nil, err
		}
	}
	if t.limiters == nil {
		t.limiters = map[string]*ratelimit.Limiter{}
	}
	t.limiters[key] = l
	t.limits = append(t.limits, labeledLimit{site: st.stats.label, route: prefix, l: l})
	return &limit{Limiter: l, counts: t.reg.rateLimit(st.stats, prefix)}, nil
}

// checkRateLimits reports the invalid fields of the rate limits of the
// site name, s, and of its routes.
func checkRateLimits(es *field.Errors, name string, s Site) {
	check := func(at string, c ratelimit.Config) {
		if c == (ratelimit.Config{}) {
			return
		}
		for _, e := range field.Leaves(c.Validate()) {
			var ce *ConfigError
			if e == nil || !errors.As(e, &ce) {
				if e != nil {
					es.Add(fmt.Errorf("%s.%s: %w", name, at, e))
				}
				continue
			}
			f := *ce
			f.Pkg, f.Field = "sites", name+"."+at+"."+ce.Field
			es.Add(&f)
		}
	}
	check("RateLimit", s.RateLimit)
	for j, r := range s.Routes {
		check(fmt.Sprintf("Routes[%d].RateLimit", j), r.RateLimit)
	}
}

// rateLimit is the counts of the rate limit of st's route prefix ("" for
// the site's own), made on first use. Build time only.
func (g *registry) rateLimit(st *siteStats, prefix string) *rateCounts {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st.limits == nil {
		st.limits = map[string]*rateCounts{}
	}
	c := st.limits[prefix]
	if c == nil {
		c = &rateCounts{}
		st.limits[prefix] = c
	}
	return c
}

// writeRateLimits writes the rate limits' decisions, by site, route and
// result, kept across reloads; then, of the limiters in use, the clients
// that owe something and those pushed out while they did.
func (t *tree) writeRateLimits(w io.Writer) {
	g := t.reg
	g.mu.Lock()
	type counted struct {
		site, route string
		c           *rateCounts
	}
	var all []counted
	for label, st := range g.sites {
		for prefix, c := range st.limits {
			all = append(all, counted{label, prefix, c})
		}
	}
	g.mu.Unlock()
	slices.SortFunc(all, func(a, b counted) int { return strings.Compare(a.site+"\x00"+a.route, b.site+"\x00"+b.route) })
	for _, a := range all {
		for r := range a.c {
			metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_rate_limit_total{site=%q,route=%q,result=%q}`, a.site, a.route, ratelimit.Result(r)), a.c[r].Load())
		}
	}
	now := time.Now()
	stats := make([]ratelimit.Stats, len(t.limits))
	for i, ll := range t.limits {
		stats[i] = ll.l.Stats(now)
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`fastserve_rate_limit_keys{site=%q,route=%q}`, ll.site, ll.route), uint64(stats[i].Keys))
	}
	for i, ll := range t.limits {
		metrics.WriteCounterUint64(w, fmt.Sprintf(`fastserve_rate_limit_evicted_total{site=%q,route=%q}`, ll.site, ll.route), stats[i].Evicted)
	}
}
