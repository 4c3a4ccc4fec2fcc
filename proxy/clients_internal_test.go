package proxy

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func clientCtx(ip string) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}, nil)
	return ctx
}

// TestClientSlotsHandOver: a request past its client's share waits, and
// takes the place of the first of its client's to end; another client is
// not held up; a wait past its bound is refused and leaves no trace.
func TestClientSlotsHandOver(t *testing.T) {
	cs := &clientSlots{max: 1, wait: 5 * time.Second}
	a, b := clientCtx("192.0.2.1"), clientCtx("192.0.2.2")
	first, ok := cs.acquire(a)
	require.True(t, ok)

	got := make(chan clientSlot)
	go func() {
		s, ok := cs.acquire(a)
		assert.True(t, ok)
		got <- s
	}()
	require.Eventually(t, func() bool { return cs.waiting.Load() == 1 }, 5*time.Second, time.Millisecond, "the second request waits")
	other, ok := cs.acquire(b)
	require.True(t, ok, "another client has its own share")
	other.release()

	first.release()
	var second clientSlot
	select {
	case second = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting request did not get the place given back")
	}
	assert.Equal(t, int32(1), second.n.Load(), "handed over: still one place held")
	assert.Equal(t, int32(0), cs.waiting.Load())

	cs.wait = 50 * time.Millisecond
	start := time.Now()
	_, ok = cs.acquire(a)
	assert.False(t, ok, "refused once its wait is over")
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	assert.Equal(t, int32(0), cs.waiting.Load())
	assertNoWaiters(t, cs)

	second.release()
	second.release() // a second release gives back nothing more
	assert.Equal(t, int32(0), cs.slots[hash64(a.RemoteIP())%clientSlotCount].Load())
}

// TestClientSlotsBound: many requests of one client at once, some giving
// up their wait, never hold more than its share, and leave none held.
func TestClientSlotsBound(t *testing.T) {
	cs := &clientSlots{max: 3, wait: 2 * time.Millisecond}
	ctx := clientCtx("192.0.2.9")
	counter := &cs.slots[hash64(ctx.RemoteIP())%clientSlotCount]
	var held, most atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 200 {
				s, ok := cs.acquire(ctx)
				if !ok {
					continue
				}
				n := held.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(time.Duration(n) * 10 * time.Microsecond)
				held.Add(-1)
				s.release()
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, most.Load(), int32(3))
	assert.Equal(t, int32(0), counter.Load())
	assert.Equal(t, int32(0), cs.waiting.Load())
	assertNoWaiters(t, cs)
}

// TestFirstChunkValid: chunk-size lines as RFC 9112 7.1 has them pass,
// with extensions and whitespace before them; one not read yet passes.
func TestFirstChunkValid(t *testing.T) {
	for in, want := range map[string]bool{
		"2\r\nok":               true,
		"1F\r\n":                true,
		"1f;name=value\r\n":     true,
		"a ;ext\r\n":            true,
		"ffffffffffffffff\r\n":  true,
		"0\r\n\r\n":             true,
		"2\nok":                 true, // bare LF: fasthttp's reader decides
		"":                      true, // nothing read yet
		"2":                     true, // the line not read whole yet
		"zz\r\nok":              false,
		"\r\nok":                false,
		"-2\r\n":                false,
		"0x2\r\n":               false,
		"10000000000000000\r\n": false,
		" 2\r\n":                false,
	} {
		br := bufio.NewReader(strings.NewReader(in))
		_, _ = br.Peek(1)
		assert.Equal(t, want, firstChunkValid(br), "%q", in)
	}
}

func assertNoWaiters(t *testing.T, cs *clientSlots) {
	t.Helper()
	for _, q := range cs.queues {
		assert.Nil(t, q.head)
		assert.Nil(t, q.tail)
	}
}
