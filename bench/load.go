package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Config describes a load run: Conns long-lived connections sending
// requests to URL until Duration has passed or Requests have been
// answered, whichever comes first.
type Config struct {
	URL      string        // http:// or https://
	Conns    int           // connections held open; if zero, 16
	Duration time.Duration // how long to run; zero: until Requests are answered
	Requests int64         // how many requests to send; zero: until Duration ends

	// Rate, if positive, sends requests at this many per second in all
	// (open loop), each at its intended time, and measures each latency
	// from that time, so a stalled server shows in the tail (coordinated
	// omission, handled as wrk2 does). Zero sends each request as soon as
	// the last answer arrived (closed loop).
	Rate float64

	// Pipeline is how many requests each connection writes before it reads
	// their answers (closed loop only). If zero, 1.
	Pipeline int

	Method string      // if empty, GET
	Header http.Header // extra request headers
	Body   []byte      // request body

	TLS *tls.Config // for https; nil verifies against the system roots

	// DisableResumption makes every TLS handshake a full one.
	DisableResumption bool

	// DisableKeepAlive sends Connection: close and a new connection for
	// every request.
	DisableKeepAlive bool

	// Timeout bounds each request (and each connect and handshake). If
	// zero, 10 s.
	Timeout time.Duration

	// Progress, if set, is called about once a second with the counts so
	// far.
	Progress func(Progress)

	// OnReady, if set, is called once every connection is open, just
	// before the clock starts (a benchmark resets its timer there).
	OnReady func()
}

// Progress is a running count, for a live display.
type Progress struct {
	Elapsed  time.Duration
	Requests uint64
	Errors   uint64
}

// Result is what a run measured.
type Result struct {
	Requests   uint64        `json:"requests"` // answered with a status below 400
	Errors     uint64        `json:"errors"`
	ByKind     ErrorKinds    `json:"errors_by_kind"`
	Elapsed    time.Duration `json:"-"`
	Seconds    float64       `json:"elapsed_s"`
	RPS        float64       `json:"rps"`
	BodyBytes  uint64        `json:"body_bytes"` // response body bytes read
	Handshakes uint64        `json:"handshakes"`
	Resumed    uint64        `json:"resumed"`
	Latency    Latency       `json:"latency"`
	FirstError string        `json:"first_error,omitempty"` // the first error of the run, to say why

	// Histogram holds every latency, in microseconds.
	Histogram *hdrhistogram.Histogram `json:"-"`
}

// ErrorKinds counts errors by what failed.
type ErrorKinds struct {
	Connect uint64 `json:"connect"` // the TCP connection could not be made
	TLS     uint64 `json:"tls"`     // the TLS handshake failed
	Timeout uint64 `json:"timeout"` // no answer within Timeout
	Status  uint64 `json:"status"`  // an answer with status 400 or above
	IO      uint64 `json:"io"`      // the connection failed mid-request
}

// Latency percentiles in microseconds.
type Latency struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
	Max  int64 `json:"max"`
}

// Run runs the load described by cfg until it is done or ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	t, err := newTarget(cfg)
	if err != nil {
		return Result{}, err
	}
	return t.run(ctx), nil
}

type target struct {
	cfg      Config
	addr     string
	tls      *tls.Config
	req      []byte // one request
	batch    []byte // Pipeline requests
	interval time.Duration

	start    time.Time
	end      time.Time // zero: no duration
	next     atomic.Int64
	hists    []lockedHist
	firstErr atomic.Pointer[string]
}

// noteError keeps the run's first error.
func (t *target) noteError(kind string, err error) {
	msg := kind + ": " + err.Error()
	t.firstErr.CompareAndSwap(nil, &msg)
}

type lockedHist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
	_  [40]byte // keep shards on separate cache lines
}

func newTarget(cfg Config) (*target, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bench: URL must be http:// or https:// with a host, got %q", cfg.URL)
	}
	if cfg.Conns == 0 {
		cfg.Conns = 16
	}
	if cfg.Pipeline == 0 {
		cfg.Pipeline = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	}
	switch {
	case cfg.Conns < 0:
		return nil, fmt.Errorf("bench: connections must be 1 or more, got %d", cfg.Conns)
	case cfg.Pipeline < 1:
		return nil, fmt.Errorf("bench: pipeline depth must be 1 or more, got %d", cfg.Pipeline)
	case cfg.Duration < 0 || cfg.Requests < 0 || cfg.Rate < 0:
		return nil, errors.New("bench: duration, requests and rate must not be negative")
	case cfg.Duration == 0 && cfg.Requests == 0:
		return nil, errors.New("bench: give a duration or a number of requests")
	case cfg.Rate > 0 && cfg.Pipeline > 1:
		return nil, errors.New("bench: pipelining is for the closed loop; drop it or the rate")
	case cfg.DisableKeepAlive && cfg.Pipeline > 1:
		return nil, errors.New("bench: pipelining needs keep-alive")
	}
	t := &target{cfg: cfg, addr: u.Host}
	if u.Port() == "" {
		t.addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	if u.Scheme == "https" {
		t.tls = &tls.Config{NextProtos: []string{"http/1.1"}}
		if cfg.TLS != nil {
			t.tls = cfg.TLS.Clone()
		}
		if t.tls.ServerName == "" {
			t.tls.ServerName = u.Hostname()
		}
		if cfg.DisableResumption {
			t.tls.ClientSessionCache = nil
			t.tls.SessionTicketsDisabled = true
		} else if t.tls.ClientSessionCache == nil {
			t.tls.ClientSessionCache = tls.NewLRUClientSessionCache(max(cfg.Conns, 64))
		}
	}
	t.req = buildRequest(cfg, u)
	for range cfg.Pipeline {
		t.batch = append(t.batch, t.req...)
	}
	if cfg.Rate > 0 {
		t.interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	t.hists = make([]lockedHist, 4*runtime.GOMAXPROCS(0))
	for i := range t.hists {
		t.hists[i].h = newHistogram()
	}
	return t, nil
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
}

func buildRequest(cfg Config, u *url.URL) []byte {
	b := []byte(cfg.Method + " " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n")
	for k, vs := range cfg.Header {
		for _, v := range vs {
			b = append(b, k+": "+v+"\r\n"...)
		}
	}
	if len(cfg.Body) > 0 || cfg.Method == http.MethodPost || cfg.Method == http.MethodPut {
		b = append(b, "Content-Length: "+strconv.Itoa(len(cfg.Body))+"\r\n"...)
	}
	if cfg.DisableKeepAlive {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, cfg.Body...)
}

// worker is one connection's loop and its counts.
type worker struct {
	t    *target
	hist *lockedHist

	requests, errors         atomic.Uint64
	bodyBytes                uint64
	handshakes, resumed      uint64
	connect, tlsErr, timeout uint64
	status, io               uint64

	mu   sync.Mutex // guards conn between the loop and closeOnStop
	conn net.Conn
	br   *bufio.Reader
	resp fasthttp.Response
}

func (t *target) run(ctx context.Context) Result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Connections are opened before the clock starts: a run measures
	// long-lived connections, not their set-up.
	workers := make([]*worker, t.cfg.Conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{t: t, hist: &t.hists[i%len(t.hists)]}
		workers[i] = w
		if !t.cfg.DisableKeepAlive {
			wg.Go(func() { w.dial(ctx) })
		}
	}
	wg.Wait()
	for _, w := range workers {
		w.handshakes, w.resumed = 0, 0 // count those of the run only
	}
	if t.cfg.OnReady != nil {
		t.cfg.OnReady()
	}
	t.start = time.Now()
	if t.cfg.Duration > 0 {
		t.end = t.start.Add(t.cfg.Duration)
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, t.end)
		defer stop()
	}
	for _, w := range workers {
		wg.Go(func() { w.loop(ctx) })
	}
	done := make(chan struct{})
	if t.cfg.Progress != nil {
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					var p Progress
					for _, w := range workers {
						p.Requests += w.requests.Load()
						p.Errors += w.errors.Load()
					}
					p.Elapsed = time.Since(t.start)
					t.cfg.Progress(p)
				}
			}
		}()
	}
	// Stop at the deadline: close the connections, so that no read waits.
	go func() {
		select {
		case <-ctx.Done():
			for _, w := range workers {
				w.closeOnStop()
			}
		case <-done:
		}
	}()
	wg.Wait()
	elapsed := time.Since(t.start)
	close(done)

	r := Result{Elapsed: elapsed, Seconds: elapsed.Seconds(), Histogram: newHistogram()}
	for _, w := range workers {
		r.Requests += w.requests.Load()
		r.BodyBytes += w.bodyBytes
		r.Handshakes += w.handshakes
		r.Resumed += w.resumed
		r.ByKind.Connect += w.connect
		r.ByKind.TLS += w.tlsErr
		r.ByKind.Timeout += w.timeout
		r.ByKind.Status += w.status
		r.ByKind.IO += w.io
	}
	if p := t.firstErr.Load(); p != nil {
		r.FirstError = *p
	}
	r.Errors = r.ByKind.Connect + r.ByKind.TLS + r.ByKind.Timeout + r.ByKind.Status + r.ByKind.IO
	for i := range t.hists {
		r.Histogram.Merge(t.hists[i].h)
	}
	if elapsed > 0 {
		r.RPS = float64(r.Requests) / elapsed.Seconds()
	}
	h := r.Histogram
	r.Latency = Latency{
		P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), Max: h.Max(),
	}
	return r
}

func (w *worker) closeOnStop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		w.conn.Close()
	}
}

func (w *worker) setConn(c net.Conn) {
	w.mu.Lock()
	w.conn = c
	w.mu.Unlock()
}

// claim takes the next n requests of the budget, or fewer, or none.
func (t *target) claim(n int) (first int64, got int) {
	first = t.next.Add(int64(n)) - int64(n)
	if t.cfg.Requests > 0 {
		if first >= t.cfg.Requests {
			return first, 0
		}
		n = int(min(int64(n), t.cfg.Requests-first))
	}
	return first, n
}

func (w *worker) loop(ctx context.Context) {
	t := w.t
	defer w.closeOnStop()
	for ctx.Err() == nil {
		depth := t.cfg.Pipeline
		first, n := t.claim(depth)
		if n == 0 {
			return
		}
		sent := time.Now()
		if t.interval > 0 {
			intended := t.start.Add(time.Duration(first) * t.interval)
			if !t.end.IsZero() && !intended.Before(t.end) {
				return
			}
			if d := time.Until(intended); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			sent = intended // latency counts from the intended send time
		}
		if w.conn == nil && !w.dial(ctx) {
			continue
		}
		w.exchange(ctx, n, sent)
	}
}

func (w *worker) dial(ctx context.Context) bool {
	t := w.t
	d := net.Dialer{Timeout: t.cfg.Timeout}
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		if ctx.Err() == nil {
			w.connect++
			w.errors.Add(1)
			t.noteError("connect", err)
			sleepCtx(ctx, 10*time.Millisecond)
		}
		return false
	}
	if t.tls != nil {
		tc := tls.Client(c, t.tls)
		hctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			c.Close()
			if ctx.Err() == nil {
				w.tlsErr++
				w.errors.Add(1)
				t.noteError("tls", err)
				sleepCtx(ctx, 10*time.Millisecond)
			}
			return false
		}
		w.handshakes++
		if tc.ConnectionState().DidResume {
			w.resumed++
		}
		c = tc
	}
	w.setConn(c)
	if w.br == nil {
		w.br = bufio.NewReaderSize(c, 16<<10)
	} else {
		w.br.Reset(c)
	}
	return true
}

// exchange writes n requests and reads their answers.
func (w *worker) exchange(ctx context.Context, n int, sent time.Time) {
	t := w.t
	c := w.conn
	deadline := time.Now().Add(t.cfg.Timeout)
	_ = c.SetDeadline(deadline)
	if _, err := c.Write(t.batch[:n*len(t.req)]); err != nil {
		w.fail(ctx, err)
		return
	}
	for range n {
		w.resp.Reset()
		if err := w.resp.Read(w.br); err != nil {
			w.fail(ctx, err)
			return
		}
		lat := time.Since(sent)
		w.bodyBytes += uint64(len(w.resp.Body()))
		if w.resp.StatusCode() >= 400 {
			w.status++
			w.errors.Add(1)
			if w.status == 1 {
				t.noteError("status", fmt.Errorf("%d", w.resp.StatusCode()))
			}
		} else {
			w.requests.Add(1)
		}
		w.hist.mu.Lock()
		_ = w.hist.h.RecordValue(max(lat.Microseconds(), 1))
		w.hist.mu.Unlock()
		if w.resp.ConnectionClose() || t.cfg.DisableKeepAlive {
			c.Close()
			w.setConn(nil)
			return
		}
	}
}

// fail counts an error (unless the run is over) and drops the connection.
func (w *worker) fail(ctx context.Context, err error) {
	w.conn.Close()
	w.setConn(nil)
	if ctx.Err() != nil {
		return // the run ended under this request: not the server's error
	}
	// fasthttp's ErrTimeout has Timeout but not Temporary: not a net.Error.
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		w.timeout++
		w.t.noteError("timeout", err)
	} else {
		w.io++
		w.t.noteError("io", err)
	}
	w.errors.Add(1)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
