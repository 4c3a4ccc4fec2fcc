package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Run is one wrk run against one server, a line of the runs file:
//
//	{"round":R,"conns":C,"server":"nginx","seconds":D,"requests":N,"rps":X,
//	 "errors":E,"cpu_ticks":T,"user_ticks":U,"clk_tck":HZ,"rss_kib":K}
//
// CPU time is the server's utime+stime over the run, summed over its
// processes, in clock ticks as /proc/PID/stat counts them; clk_tck is the
// ticks per second (getconf CLK_TCK). ab.sh leaves out what it does not
// measure (rps, errors, user_ticks, rss_kib), which then read as zero.
//
// proxy.sh's runs, through a proxy to an upstream, add three fields:
//
//	"body":"4KiB","upstream_ticks":T2,"upstream_conns":N2
//
// the answer's size (a run is then a peer's at that body and connection
// count), the upstream's utime+stime over the run and the connections it
// accepted during the run (the proxy's new upstream connections: zero
// when its keep-alive pool holds them all).
type Run struct {
	Round     int     `json:"round"`
	Conns     int     `json:"conns"`
	Server    string  `json:"server"`
	Seconds   float64 `json:"seconds"`  // wrk's -d, the run's length
	Requests  int64   `json:"requests"` // wrk's "N requests in"
	RPS       float64 `json:"rps"`      // wrk's Requests/sec
	Errors    int64   `json:"errors"`   // wrk's socket errors and non-2xx or 3xx responses
	CPUTicks  int64   `json:"cpu_ticks"`
	UserTicks int64   `json:"user_ticks"` // the utime part of CPUTicks
	ClockTick int64   `json:"clk_tck"`
	RSS       int64   `json:"rss_kib"` // the server's VmRSS halfway through the run, KiB

	Body          string `json:"body,omitempty"`
	UpstreamTicks int64  `json:"upstream_ticks,omitempty"`
	UpstreamConns int64  `json:"upstream_conns,omitempty"`
}

// cpu is the server's CPU time over the run, in seconds.
func (r Run) cpu() float64 { return float64(r.CPUTicks) / float64(r.ClockTick) }

// user is the user part of cpu, in seconds.
func (r Run) user() float64 { return float64(r.UserTicks) / float64(r.ClockTick) }

// perCPU is requests per server CPU-second, zero when no CPU time was counted.
func (r Run) perCPU() float64 {
	if r.CPUTicks <= 0 {
		return 0
	}
	return float64(r.Requests) / r.cpu()
}

// upstreamPerRequest is the upstream's CPU time per request in
// microseconds.
func (r Run) upstreamPerRequest() float64 {
	return perRequest(float64(r.UpstreamTicks)/float64(r.ClockTick), r.Requests)
}

// label names the run's server, with its body when it has one.
func (r Run) label() string {
	if r.Body == "" {
		return r.Server
	}
	return r.Server + " body=" + r.Body
}

// busy is the share of the run the server spent on its CPU.
func (r Run) busy() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return r.cpu() / r.Seconds
}

// userPerRequest and kernelPerRequest are the server's CPU time per request
// in microseconds, in user space and in the kernel.
func (r Run) userPerRequest() float64   { return perRequest(r.user(), r.Requests) }
func (r Run) kernelPerRequest() float64 { return perRequest(r.cpu()-r.user(), r.Requests) }

func perRequest(seconds float64, requests int64) float64 {
	if requests <= 0 {
		return 0
	}
	return 1e6 * seconds / float64(requests)
}

func (r Run) check() error {
	switch {
	case r.Server == "":
		return errors.New("no server")
	case r.Round < 1:
		return fmt.Errorf("round must be >= 1, got %d", r.Round)
	case r.ClockTick < 1:
		return fmt.Errorf("clk_tck must be >= 1, got %d", r.ClockTick)
	}
	return nil
}

// Idle is one server's idle-memory test, a line of the idle file: the
// server fresh, then Conns idle keep-alive TLS connections held open, its
// VmRSS (KiB) and open descriptors read before, Settle seconds after the
// last connection is set up, and its RSS again SettleLater seconds after.
//
//	{"server":"nginx","conns":C,"rss_kib_before":K0,"rss_kib":K1,"rss_kib_later":K2,
//	 "settle_s":S1,"settle_later_s":S2,"fds_before":F0,"fds":F1,"nofile":"nofile limit: ..."}
type Idle struct {
	Server      string  `json:"server"`
	Conns       int     `json:"conns"`
	RSSBefore   int64   `json:"rss_kib_before"`
	RSS         int64   `json:"rss_kib"`
	RSSLater    int64   `json:"rss_kib_later"`
	Settle      float64 `json:"settle_s"`
	SettleLater float64 `json:"settle_later_s"`
	FDsBefore   int     `json:"fds_before"`
	FDs         int     `json:"fds"`
	Nofile      string  `json:"nofile"` // idleconns' line on its descriptor limit
}

// perConn is the RSS growth per connection in KiB, Settle seconds after the
// connections were set up, and SettleLater seconds after.
func (t Idle) perConn() (settled, later float64) {
	n := float64(t.Conns)
	return float64(t.RSS-t.RSSBefore) / n, float64(t.RSSLater-t.RSSBefore) / n
}

func (t Idle) check() error {
	switch {
	case t.Server == "":
		return errors.New("no server")
	case t.Conns < 1:
		return fmt.Errorf("conns must be >= 1, got %d", t.Conns)
	}
	return nil
}

// record is what a measurements file holds.
type record interface {
	Run | Idle | WSRun
	check() error
}

// readFile reads a file of one JSON object per line; blank lines are
// skipped, an unknown field is an error.
func readFile[T record](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v T
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("report: %s:%d: %w", path, n, err)
		}
		if err := v.check(); err != nil {
			return nil, fmt.Errorf("report: %s:%d: %w", path, n, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	return out, nil
}
