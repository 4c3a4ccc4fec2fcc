package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what an echo load prints, as one JSON object.
type Result struct {
	Conns      int     `json:"conns"`
	Size       int     `json:"size"`
	Seconds    float64 `json:"seconds"`  // the measured window
	Messages   int64   `json:"messages"` // echoed within the window
	Rate       float64 `json:"rate"`     // messages per second
	Errors     int64   `json:"errors"`   // connections that failed (each ends its part of the run)
	FirstError string  `json:"first_error,omitempty"`
	P50        int64   `json:"p50_us"`
	P90        int64   `json:"p90_us"`
	P99        int64   `json:"p99_us"`
	P999       int64   `json:"p999_us"`
	Max        int64   `json:"max_us"`
	CPUTicks   int64   `json:"cpu_ticks"`  // of -pids, in the window
	UserTicks  int64   `json:"user_ticks"` // the utime part
	ClockTick  int64   `json:"clk_tck"`
	RSS        int64   `json:"rss_kib"` // of -pids, VmRSS at the window's middle
	TLS        string  `json:"tls"`     // what the first connection negotiated
	Nofile     string  `json:"nofile"`
}

// window is the measured window, as offsets from the load's start (0: not
// yet begun, not yet ended).
type window struct {
	base       time.Time
	start, end atomic.Int64
	stop       atomic.Bool
}

func (w *window) now() int64 { return int64(time.Since(w.base)) }

// counts reports whether a message written at sent and echoed at done is
// within the window.
func (w *window) counts(sent, done int64) bool {
	s := w.start.Load()
	if s == 0 || sent < s {
		return false
	}
	e := w.end.Load()
	return e == 0 || done <= e
}

// shard is one part of the latency histogram, so that connections on
// several threads do not share one lock.
type shard struct {
	mu       sync.Mutex
	h        *hdrhistogram.Histogram
	messages int64
	_        [40]byte
}

// echoLoad runs the echo load. An error that ends the run early comes
// without a Result; a run where no message was echoed in the window
// comes with both.
func echoLoad(o options) (Result, error) {
	nofile := raiseFileLimit()
	conns, err := openAll(&o, o.conns)
	if err != nil {
		return Result{}, err
	}
	defer closeAll(conns)
	res := Result{Conns: o.conns, Size: o.size, Seconds: o.duration.Seconds(), ClockTick: o.clockTick,
		TLS: tlsState(conns[0]), Nofile: nofile}

	shards := make([]shard, 4*runtime.GOMAXPROCS(0))
	for i := range shards {
		shards[i].h = hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
	}
	var (
		w        = window{base: time.Now()}
		errCount atomic.Int64
		firstErr atomic.Pointer[string]
		wg       sync.WaitGroup
	)
	// Every connection's last read is bounded: the run's length, then the
	// timeout.
	deadline := time.Now().Add(o.warmup + o.duration + o.timeout)
	for i, c := range conns {
		_ = c.nc.SetDeadline(deadline)
		sh := &shards[i%len(shards)]
		wg.Go(func() {
			for !w.stop.Load() {
				sent := w.now()
				if err := c.exchange(); err != nil {
					if !w.stop.Load() || !errors.Is(err, os.ErrDeadlineExceeded) {
						errCount.Add(1)
						msg := err.Error()
						firstErr.CompareAndSwap(nil, &msg)
					}
					return
				}
				done := w.now()
				if w.counts(sent, done) {
					sh.mu.Lock()
					_ = sh.h.RecordValue(max(1, (done-sent)/int64(time.Microsecond)))
					sh.messages++
					sh.mu.Unlock()
				}
			}
		})
	}

	time.Sleep(o.warmup)
	t0, u0, err := cpuTicks(o.pidList)
	if err != nil {
		w.stop.Store(true)
		return Result{}, err
	}
	w.start.Store(w.now())
	time.Sleep(o.duration / 2)
	res.RSS, err = rssKiB(o.pidList)
	if err != nil {
		w.stop.Store(true)
		return Result{}, err
	}
	time.Sleep(o.duration - o.duration/2)
	w.end.Store(w.now())
	t1, u1, err := cpuTicks(o.pidList)
	w.stop.Store(true)
	if err != nil {
		return Result{}, err
	}
	res.CPUTicks, res.UserTicks = t1-t0, u1-u0
	wg.Wait()

	all := hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
	for i := range shards {
		all.Merge(shards[i].h)
		res.Messages += shards[i].messages
	}
	res.Rate = float64(res.Messages) / o.duration.Seconds()
	res.P50, res.P90, res.P99 = all.ValueAtQuantile(50), all.ValueAtQuantile(90), all.ValueAtQuantile(99)
	res.P999, res.Max = all.ValueAtQuantile(99.9), all.Max()
	res.Errors = errCount.Load()
	if p := firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	if res.Messages == 0 {
		return res, fmt.Errorf("no message echoed within the window (%d errors: %s)", res.Errors, res.FirstError)
	}
	return res, nil
}
