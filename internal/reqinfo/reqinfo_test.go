package reqinfo_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/reqinfo"
)

// TestValues: what is recorded is read back, attempts in order up to
// MaxAttempts, and a reset request has none.
func TestValues(t *testing.T) {
	var ctx fasthttp.RequestCtx
	assert.Empty(t, reqinfo.SiteName(&ctx))
	assert.Empty(t, reqinfo.Upstreams(&ctx))

	site := &reqinfo.Site{Name: "example.com"}
	reqinfo.SetSite(&ctx, site)
	for i := range reqinfo.MaxAttempts + 1 {
		reqinfo.AddUpstream(&ctx, "10.0.0.1:80", time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, "example.com", reqinfo.SiteName(&ctx))
	got := reqinfo.Upstreams(&ctx)
	assert.Len(t, got, reqinfo.MaxAttempts)
	assert.Equal(t, reqinfo.Attempt{Addr: "10.0.0.1:80", Time: time.Millisecond}, got[1])

	ctx.Request.Reset() // as fasthttp does before the next request
	assert.Empty(t, reqinfo.SiteName(&ctx))
	assert.Empty(t, reqinfo.Upstreams(&ctx))
}

// TestNoAllocation: a request that records its site and an upstream, and
// is reset, allocates nothing once the pool is warm.
func TestNoAllocation(t *testing.T) {
	var ctx fasthttp.RequestCtx
	site := &reqinfo.Site{Name: "example.com"}
	allocs := testing.AllocsPerRun(100, func() {
		reqinfo.SetSite(&ctx, site)
		reqinfo.AddUpstream(&ctx, "10.0.0.1:80", 1500*time.Microsecond)
		_ = reqinfo.Upstreams(&ctx)
		_ = reqinfo.SiteName(&ctx)
		ctx.Request.Reset()
	})
	assert.Zero(t, allocs)
}
