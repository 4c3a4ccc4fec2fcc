package proxy

import (
	"sync"
	"sync/atomic"
	"time"

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
//
// A request past its client's share waits, in turn with the client's
// other waiting requests, for one of them to end, as a request waits for
// a free upstream connection past MaxConns; only a wait past the
// ConnectTimeout gets 503. So a client that sends many requests at once
// (a balancer without PROXY headers, a load test) is slowed to its
// share, not refused, while the others keep theirs.
type clientSlots struct {
	max   int32
	wait  time.Duration
	slots [clientSlotCount]atomic.Int32

	waiting atomic.Int32 // requests in queues: while none, release is two atomic operations
	mu      sync.Mutex
	queues  map[*atomic.Int32]*waitQueue // by counter, once one has waited
}

// waitQueue is the requests waiting on one counter, first come first.
type waitQueue struct{ head, tail *slotWaiter }

// slotWaiter is a request waiting for its client's share.
type slotWaiter struct {
	handed     chan struct{} // a release handed its slot over
	timer      *time.Timer
	prev, next *slotWaiter // in its waitQueue
	queued     bool
}

// push adds w at q's tail.
func (q *waitQueue) push(w *slotWaiter) {
	w.prev, w.next, w.queued = q.tail, nil, true
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
}

// remove takes w, queued, out of q.
func (q *waitQueue) remove(w *slotWaiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
}

var waiterPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &slotWaiter{handed: make(chan struct{}, 1), timer: t}
}}

// clientSlot is one request's place in its client's share, given back
// by release; the zero clientSlot holds none.
type clientSlot struct {
	cs *clientSlots
	n  *atomic.Int32
}

// release gives the place back, once.
func (s *clientSlot) release() {
	if s.n != nil {
		s.cs.give(s.n)
		*s = clientSlot{}
	}
}

// acquire takes a place in ctx's client's share; ok is false if the
// client stayed at its bound for cs.wait.
func (cs *clientSlots) acquire(ctx *fasthttp.RequestCtx) (_ clientSlot, ok bool) {
	s, ok := cs.take(ctx)
	return clientSlot{cs, s}, ok
}

func (cs *clientSlots) take(ctx *fasthttp.RequestCtx) (*atomic.Int32, bool) {
	s := &cs.slots[hash64(ctx.RemoteIP())%clientSlotCount]
	if s.Add(1) <= cs.max {
		return s, true
	}
	s.Add(-1)
	w := waiterPool.Get().(*slotWaiter)
	defer waiterPool.Put(w)
	cs.mu.Lock()
	// Counted first, so that a release from now on looks at the queue;
	// then one more try, for a release that came before.
	cs.waiting.Add(1)
	if s.Add(1) <= cs.max {
		cs.waiting.Add(-1)
		cs.mu.Unlock()
		return s, true
	}
	s.Add(-1)
	if cs.queues == nil {
		cs.queues = map[*atomic.Int32]*waitQueue{}
	}
	q := cs.queues[s]
	if q == nil {
		q = &waitQueue{} // kept: at most clientSlotCount of them
		cs.queues[s] = q
	}
	q.push(w)
	cs.mu.Unlock()

	w.timer.Reset(cs.wait)
	select {
	case <-w.handed:
		w.timer.Stop()
		return s, true
	case <-w.timer.C:
	}
	cs.mu.Lock()
	if w.queued {
		q.remove(w)
		cs.waiting.Add(-1)
		cs.mu.Unlock()
		if s.Add(1) <= cs.max { // a last try, as a wait that just ended
			return s, true
		}
		s.Add(-1)
		return nil, false
	}
	cs.mu.Unlock()
	<-w.handed // handed over as the wait ended: taken after all
	return s, true
}

// give gives back what acquire counted on s: to the first request waiting
// on it, if any, which then holds it. The place goes back first, and the
// queue is looked at after: a request that counted itself waiting before
// this look is found in its queue, and one that did so after found the
// place free when it tried once more (take), so none sleeps on a free
// place.
func (cs *clientSlots) give(s *atomic.Int32) {
	s.Add(-1)
	if cs.waiting.Load() == 0 {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	q := cs.queues[s]
	if q == nil || q.head == nil {
		return
	}
	// Taken back for the first waiter, unless a request that did not
	// wait took it meanwhile: then that one's release hands it over.
	if s.Add(1) > cs.max {
		s.Add(-1)
		return
	}
	w := q.head
	q.remove(w)
	cs.waiting.Add(-1)
	w.handed <- struct{}{} // buffered: never blocks
}
