// Package reqinfo carries what the features that serve a request learn
// of it (the site that served it, the upstreams it went to) to the access
// log, which reads it once the answer is set: a seam between leaves that
// do not import each other (sites, proxy, accesslog).
//
// Each value is a fasthttp user value of ctx, keyed by an unexported
// type, and costs no allocation per request: a site's name is a pointer
// to a Site made once with the site; the upstreams a request went to are
// kept in a pooled struct that fasthttp gives back (its Close) when it
// resets the request's user values, after the handler returns.
package reqinfo

import (
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// A Site is the name a site is known by in the access log ($site). Make
// one per site, when the site is built, and give its pointer to SetSite.
type Site struct {
	Name string
}

type siteKey struct{}

// SetSite records s as the site serving ctx's request.
func SetSite(ctx *fasthttp.RequestCtx, s *Site) {
	ctx.SetUserValue(siteKey{}, s)
}

// SiteName is the name of the site serving ctx's request, or "" if none
// was recorded.
func SiteName(ctx *fasthttp.RequestCtx) string {
	if s, _ := ctx.UserValue(siteKey{}).(*Site); s != nil {
		return s.Name
	}
	return ""
}

// MaxAttempts is how many upstream attempts a request records; later ones
// are not recorded. The proxy makes at most two.
const MaxAttempts = 4

// An Attempt is one request sent to an upstream.
type Attempt struct {
	Addr string        // the upstream's host:port, as configured
	Time time.Duration // from sending the request to its response head, or to the failure
}

// attempts are the upstream attempts of one request: pooled, given back
// by Close, which fasthttp calls when it resets the request's user values.
type attempts struct {
	n    int
	list [MaxAttempts]Attempt
}

var attemptsPool = sync.Pool{New: func() any { return &attempts{} }}

// Close gives a back to the pool; fasthttp calls it once the request is
// done with (io.Closer).
func (a *attempts) Close() error {
	*a = attempts{}
	attemptsPool.Put(a)
	return nil
}

type upstreamKey struct{}

// AddUpstream records an attempt of ctx's request at the upstream addr,
// which took d.
func AddUpstream(ctx *fasthttp.RequestCtx, addr string, d time.Duration) {
	a, _ := ctx.UserValue(upstreamKey{}).(*attempts)
	if a == nil {
		a = attemptsPool.Get().(*attempts)
		ctx.SetUserValue(upstreamKey{}, a)
	}
	if a.n < MaxAttempts {
		a.list[a.n] = Attempt{Addr: addr, Time: d}
		a.n++
	}
}

// Upstreams are the attempts recorded for ctx's request, in order, or
// none. The slice is valid until fasthttp resets the request, once the
// server's handler has returned.
func Upstreams(ctx *fasthttp.RequestCtx) []Attempt {
	if a, _ := ctx.UserValue(upstreamKey{}).(*attempts); a != nil {
		return a.list[:a.n]
	}
	return nil
}
