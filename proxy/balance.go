package proxy

import (
	"strings"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// hashKeyKind is what Route.HashKey names.
type hashKeyKind int

const (
	hashKeyAddr hashKeyKind = iota
	hashKeyHeader
	hashKeyCookie
)

// parseHashKey parses Route.HashKey.
func parseHashKey(s string) (hashKeyKind, string, bool) {
	switch kind, name, _ := strings.Cut(s, ":"); {
	case s == "" || s == "addr":
		return hashKeyAddr, "", true
	case kind == "header" && name != "" && !strings.ContainsAny(name, " \t\r\n:"):
		return hashKeyHeader, name, true
	case kind == "cookie" && name != "" && !strings.ContainsAny(name, " \t\r\n;=,"):
		return hashKeyCookie, name, true
	}
	return 0, "", false
}

// hash64 is FNV-1a, mixed: the same in every process and every version,
// so that a key stays on its upstream across restarts, hand-overs and
// instances sharing a port (a per-process seed would move most keys at
// each). A client could aim its keys at one upstream, as it could by
// trying values: stickiness is not a limit (rate limits are).
func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return mix(h)
}

// key is the hash of ctx's HashKey.
func (r *proxyRoute) key(ctx *fasthttp.RequestCtx) uint64 {
	var v []byte
	switch r.keyKind {
	case hashKeyHeader:
		v = ctx.Request.Header.PeekBytes(r.keyName)
	case hashKeyCookie:
		v = ctx.Request.Header.CookieBytes(r.keyName)
	}
	if len(v) == 0 {
		v = ctx.RemoteIP()
	}
	return hash64(v)
}

// pick returns the upstream of r for ctx's request by r's Balance, among
// those that are up, other than skip (the one a retry leaves). If every
// upstream is down, it picks among all of them (a connect that fails
// costs little, and the marks may be stale), but still not skip; it
// returns nil when only skip is left.
func (r *proxyRoute) pick(ctx *fasthttp.RequestCtx, skip *upstream) *upstream {
	switch r.balance {
	case "hash":
		return r.pickHash(r.key(ctx), skip)
	case "round-robin":
		return r.pickNext(skip)
	}
	return r.pickLeastLoaded(skip)
}

// pickLeastLoaded picks the upstream with the fewest requests in flight,
// scanning from a point that moves with each call so that ties take
// turns.
func (r *proxyRoute) pickLeastLoaded(skip *upstream) *upstream {
	n := len(r.upstreams)
	start := int(atomic.AddUint32(&r.next, 1))
	var best, anyBest *upstream
	for i := range n {
		u := r.upstreams[(start+i)%n]
		if u == skip {
			continue
		}
		if anyBest == nil || u.inflight.Load() < anyBest.inflight.Load() {
			anyBest = u
		}
		if !u.down.Load() && (best == nil || u.inflight.Load() < best.inflight.Load()) {
			best = u
		}
	}
	if best == nil {
		return anyBest
	}
	return best
}

// pickNext picks the next upstream in turn.
func (r *proxyRoute) pickNext(skip *upstream) *upstream {
	n := len(r.upstreams)
	start := int(atomic.AddUint32(&r.next, 1))
	var first *upstream
	for i := range n {
		u := r.upstreams[(start+i)%n]
		if u == skip {
			continue
		}
		if !u.down.Load() {
			return u
		}
		if first == nil {
			first = u
		}
	}
	return first
}

// pickHash picks the upstream whose score for key is highest
// (rendezvous hashing).
func (r *proxyRoute) pickHash(key uint64, skip *upstream) *upstream {
	var best, anyBest *upstream
	var bestScore, anyScore uint64
	for _, u := range r.upstreams {
		if u == skip {
			continue
		}
		s := mix(key ^ u.hashID)
		if anyBest == nil || s > anyScore {
			anyBest, anyScore = u, s
		}
		if !u.down.Load() && (best == nil || s > bestScore) {
			best, bestScore = u, s
		}
	}
	if best == nil {
		return anyBest
	}
	return best
}

// mix is SplitMix64's finalizer: every bit of x moves every bit of the
// result.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
