package proxy

import (
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// clientSlotCount is the number of counters clients are spread over.
const clientSlotCount = 1024

// clientSlots bound each client's share of the connections to the
// upstreams (Config.MaxConnsPerClient): the requests of one client
// address waiting on an upstream, or streaming an answer from one, at
// once, and its tunnels. A client is counted in one of clientSlotCount
// counters (4 KiB a proxy, and a site has a proxy of its own), by a hash
// of its address, so that the bound costs two atomic operations and no
// memory per client; two clients that hash alike share a budget.
type clientSlots struct {
	max   int32
	slots [clientSlotCount]atomic.Int32
}

// acquire counts one more request of ctx's client, and returns its
// counter to give back (release); nil if the client is at its bound.
func (cs *clientSlots) acquire(ctx *fasthttp.RequestCtx) *atomic.Int32 {
	s := &cs.slots[hash64(ctx.RemoteIP())%clientSlotCount]
	if s.Add(1) > cs.max {
		s.Add(-1)
		return nil
	}
	return s
}

// release gives back what acquire counted; a nil counter is none.
func release(s *atomic.Int32) {
	if s != nil {
		s.Add(-1)
	}
}
