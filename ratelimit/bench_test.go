package ratelimit_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/ratelimit"
)

// keys are n clients' keys of l.
func keys(l *ratelimit.Limiter, n int) []ratelimit.Key {
	ks := make([]ratelimit.Key, n)
	var b [8]byte
	for i := range ks {
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		ks[i] = l.HeaderKey(b[:])
	}
	return ks
}

// BenchmarkAllow: one decision, with its clock read; clients=100000 is
// more than the default MaxKeys, so that new clients take places of
// others.
func BenchmarkAllow(b *testing.B) {
	for _, n := range []int{1, 1000, 100_000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			l := newLimiter(b, "10/s", 5)
			ks := keys(l, n)
			for _, k := range ks {
				l.Allow(k, time.Now()) // the shards' sets made
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Allow(ks[i], time.Now())
				if i++; i == len(ks) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkAllowParallel: decisions from every P at once, on clients
// spread over the shards.
func BenchmarkAllowParallel(b *testing.B) {
	for _, n := range []int{1, 1000, 100_000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			l := newLimiter(b, "10/s", 5)
			ks := keys(l, n)
			for _, k := range ks {
				l.Allow(k, time.Now())
			}
			var start atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(start.Add(7919)) % len(ks)
				for pb.Next() {
					l.Allow(ks[i], time.Now())
					if i++; i == len(ks) {
						i = 0
					}
				}
			})
		})
	}
}

// BenchmarkRequest: a request keyed, decided and, past the burst,
// refused, as a handler does.
func BenchmarkRequest(b *testing.B) {
	for _, header := range []string{"", "X-Api-Key"} {
		name := "key=addr"
		if header != "" {
			name = "key=header"
		}
		b.Run(name, func(b *testing.B) {
			l := newLimiter(b, "10/s", 5, func(c *ratelimit.Config) { c.Header = header })
			var ctx fasthttp.RequestCtx
			ctx.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5000})
			ctx.Request.Header.Set("X-Api-Key", "0123456789abcdef0123456789abcdef")
			b.ReportAllocs()
			for b.Loop() {
				if r, wait := l.Allow(l.Key(&ctx), time.Now()); r == ratelimit.Limited {
					ratelimit.Reject(&ctx, wait)
				}
			}
		})
	}
}
