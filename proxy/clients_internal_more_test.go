package proxy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClientSlotsLostWakeup: give reads cs.waiting before it gives
// the place back (s.Add(-1)); take counts itself in cs.waiting, then tries
// once more, then queues. If the release's read of waiting (0) comes
// before the waiter's count, and its s.Add(-1) after the waiter's last
// try, the place goes back to the counter and nobody is told: the waiter
// sleeps the whole ConnectTimeout with its client's place free, and its
// timeout path does not try again: 503. The test runs give's two steps
// around a waiter that queues, as the interleaving has them (a thread
// descheduled between the two, which a loaded machine does).
func TestClientSlotsLostWakeup(t *testing.T) {
	cs := &clientSlots{max: 1, wait: 300 * time.Millisecond}
	ctx := clientCtx("192.0.2.7")
	held, ok := cs.acquire(ctx)
	require.True(t, ok)
	s := held.n

	// give, step 1: no one waits yet.
	require.Zero(t, cs.waiting.Load())

	// A second request of the client queues meanwhile.
	got := make(chan bool, 1)
	start := time.Now()
	go func() {
		w, ok := cs.acquire(ctx)
		if ok {
			w.release()
		}
		got <- ok
	}()
	require.Eventually(t, func() bool { return cs.waiting.Load() == 1 }, 5*time.Second, time.Millisecond)

	// give, step 2 (waiting was 0 when it looked): the place goes back.
	s.Add(-1)
	held = clientSlot{}

	assert.True(t, <-got, "the client's place was free %v of its %v wait, and it got 503", time.Since(start).Round(time.Millisecond), cs.wait)
}
