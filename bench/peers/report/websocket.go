package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/fastserve/fastserve/bench"
)

// WSRun is one echo load of bench/peers/websocket.sh against one proxy, a
// line of its runs file: the round and proxy, then what bench/wsload
// printed (its Result):
//
//	{"round":R,"server":"nginx","conns":C,"size":S,"seconds":D,"messages":N,"rate":X,
//	 "errors":E,"first_error":"...","p50_us":P,"p90_us":P,"p99_us":P,"p999_us":P,"max_us":P,
//	 "cpu_ticks":T,"user_ticks":U,"clk_tck":HZ,"rss_kib":K,"tls":"...","nofile":"..."}
//
// CPU time is the proxy's over the measured window alone (wsload reads it
// at the window's edges), summed over its processes, in clock ticks.
type WSRun struct {
	Round      int     `json:"round"`
	Server     string  `json:"server"`
	Conns      int     `json:"conns"`
	Size       int     `json:"size"`     // message payload, bytes
	Seconds    float64 `json:"seconds"`  // the measured window
	Messages   int64   `json:"messages"` // echoed within the window
	Rate       float64 `json:"rate"`     // messages per second
	Errors     int64   `json:"errors"`   // WebSockets that failed during the run
	FirstError string  `json:"first_error"`
	P50        float64 `json:"p50_us"`
	P90        float64 `json:"p90_us"`
	P99        float64 `json:"p99_us"`
	P999       float64 `json:"p999_us"`
	Max        float64 `json:"max_us"`
	CPUTicks   int64   `json:"cpu_ticks"`
	UserTicks  int64   `json:"user_ticks"`
	ClockTick  int64   `json:"clk_tck"`
	RSS        int64   `json:"rss_kib"` // the proxy's VmRSS at the window's middle
	TLS        string  `json:"tls"`     // what wsload's first connection negotiated
	Nofile     string  `json:"nofile"`  // wsload's descriptor limit
}

func (r WSRun) cpu() float64  { return float64(r.CPUTicks) / float64(r.ClockTick) }
func (r WSRun) user() float64 { return float64(r.UserTicks) / float64(r.ClockTick) }

// perCPU is messages per proxy CPU-second, zero when no CPU time was
// counted.
func (r WSRun) perCPU() float64 {
	if r.CPUTicks <= 0 {
		return 0
	}
	return float64(r.Messages) / r.cpu()
}

// busy is the share of the window the proxy spent on its CPU.
func (r WSRun) busy() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return r.cpu() / r.Seconds
}

func (r WSRun) check() error {
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

// wsRow is a proxy's figures at one connection count over the rounds, and
// its ratios to the reference, each the median of the per-round ratios.
type wsRow struct {
	peer
	Size              int
	Rate              bench.Spread // messages/s
	PerCPU            bench.Spread // messages per proxy CPU-second
	UserPerMessage    bench.Spread // µs
	KernelPerMessage  bench.Spread // µs
	Busy              bench.Spread
	RSS               bench.Spread // MiB
	P50, P99          bench.Spread // µs
	Errors            int64
	PerCPUVsReference bench.Spread
	P99VsReference    bench.Spread
}

// wsThroughput summarises the runs by proxy and connection count, in the
// order the runs first name them.
func wsThroughput(runs []WSRun, reference string) ([]wsRow, error) {
	byRound := map[peer]map[int]WSRun{}
	var conns, rounds []int
	var servers []string
	for _, r := range runs {
		p := peer{Conns: r.Conns, Server: r.Server}
		if byRound[p] == nil {
			byRound[p] = map[int]WSRun{}
		}
		if _, dup := byRound[p][r.Round]; dup {
			return nil, fmt.Errorf("two runs of %s at %d conns in round %d", r.Server, r.Conns, r.Round)
		}
		byRound[p][r.Round] = r
		if !slices.Contains(conns, r.Conns) {
			conns = append(conns, r.Conns)
		}
		if !slices.Contains(servers, r.Server) {
			servers = append(servers, r.Server)
		}
		if !slices.Contains(rounds, r.Round) {
			rounds = append(rounds, r.Round)
		}
	}
	var rows []wsRow
	for _, c := range conns {
		for _, s := range servers {
			p := peer{Conns: c, Server: s}
			if byRound[p] == nil {
				continue
			}
			row := wsRow{peer: p}
			var rate, perCPU, user, kernel, busy, rss, p50, p99 []float64
			var cpuRef, p99Ref paired
			for _, round := range rounds {
				r, ok := byRound[p][round]
				if !ok {
					continue
				}
				row.Size = r.Size
				row.Errors += r.Errors
				rate = append(rate, r.Rate)
				perCPU = append(perCPU, r.perCPU())
				user = append(user, perRequest(r.user(), r.Messages))
				kernel = append(kernel, perRequest(r.cpu()-r.user(), r.Messages))
				busy = append(busy, r.busy())
				rss = append(rss, float64(r.RSS)/1024)
				p50 = append(p50, r.P50)
				p99 = append(p99, r.P99)
				if ref, ok := byRound[peer{Conns: c, Server: reference}][round]; ok {
					cpuRef.add(r.perCPU(), ref.perCPU())
					p99Ref.add(r.P99, ref.P99)
				}
			}
			row.Rate, row.PerCPU = bench.SpreadOf(rate), bench.SpreadOf(perCPU)
			row.UserPerMessage, row.KernelPerMessage = bench.SpreadOf(user), bench.SpreadOf(kernel)
			row.Busy, row.RSS = bench.SpreadOf(busy), bench.SpreadOf(rss)
			row.P50, row.P99 = bench.SpreadOf(p50), bench.SpreadOf(p99)
			row.PerCPUVsReference = bench.RatioOf(cpuRef.a, cpuRef.b)
			row.P99VsReference = bench.RatioOf(p99Ref.a, p99Ref.b)
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// printWSThroughput prints websocket.sh's throughput table, the ratio to
// the reference in messages per CPU-second in bold: the headline figure.
func printWSThroughput(w io.Writer, rows []wsRow, reference string) {
	fmt.Fprintf(w, "| proxy | conns | msg bytes | messages/s | messages per proxy CPU-s | proxy µs per message: user + kernel | proxy CPU busy | proxy RSS under load | p50 ms | p99 ms | msg/CPU-s vs %s | p99 vs %s | errors |\n",
		reference, reference)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %d | %s [%s-%s] | **%s** [%s-%s] | %.2f + %.2f | %.0f%% | %.0f MiB | %.2f | %.2f [%.2f-%.2f] | **%s** | %s | %d |\n",
			r.Server, r.Conns, r.Size,
			thousands(r.Rate.Median), thousands(r.Rate.Min), thousands(r.Rate.Max),
			thousands(r.PerCPU.Median), thousands(r.PerCPU.Min), thousands(r.PerCPU.Max),
			r.UserPerMessage.Median, r.KernelPerMessage.Median, 100*r.Busy.Median, r.RSS.Median,
			r.P50.Median/1000, r.P99.Median/1000, r.P99.Min/1000, r.P99.Max/1000,
			ratio(r.PerCPUVsReference), ratio(r.P99VsReference), r.Errors)
	}
}

// printWSRuns prints every run, in the file's order.
func printWSRuns(w io.Writer, runs []WSRun) {
	fmt.Fprintln(w, "| round | conns | proxy | messages/s | messages | proxy CPU-s (user + kernel) | messages per proxy CPU-s | p50 ms | p99 ms | max ms | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range runs {
		fmt.Fprintf(w, "| %d | %d | %s | %.0f | %d | %.2f (%.2f + %.2f) | %.0f | %.2f | %.2f | %.1f | %d |\n",
			r.Round, r.Conns, r.Server, r.Rate, r.Messages, r.cpu(), r.user(), r.cpu()-r.user(), r.perCPU(),
			r.P50/1000, r.P99/1000, r.Max/1000, r.Errors)
	}
	var tlss []string
	for _, r := range runs {
		tlss = append(tlss, r.Server+": "+r.TLS)
	}
	slices.Sort(tlss)
	fmt.Fprintf(w, "\nTLS negotiated by wsload: %s\n", strings.Join(slices.Compact(tlss), "; "))
}

// printWSRunLine prints the line websocket.sh shows after each run.
func printWSRunLine(w io.Writer, r WSRun) {
	fmt.Fprintf(w, "round %d  c=%-5d %-9s %8.0f msg/s  proxy CPU %6.2f s (%3.0f%%)  %7.0f msg/CPU-s  p50 %6.2f ms  p99 %7.2f ms  errors %d\n",
		r.Round, r.Conns, r.Server, r.Rate, r.cpu(), 100*r.busy(), r.perCPU(), r.P50/1000, r.P99/1000, r.Errors)
}

// printWSIdle prints websocket.sh's table of memory per idle WebSocket:
// Idle tests whose Conns are WebSockets, each a client socket and an
// upstream socket in the proxy.
func printWSIdle(w io.Writer, tests []Idle) {
	if len(tests) == 0 {
		return
	}
	settle, later := tests[0].Settle, tests[0].SettleLater
	fmt.Fprintf(w, "| proxy | WebSockets | RSS before | RSS with them (+%g s) | KiB per WebSocket, +%g s | KiB per WebSocket, +%g s | open fds before -> after (per WebSocket) |\n",
		settle, settle, later)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	var limits []string
	for _, t := range tests {
		settled, later := t.perConn()
		fmt.Fprintf(w, "| %s | %s | %.1f MiB | %.1f MiB | **%.1f** | **%.1f** | %d -> %d (%.2f) |\n",
			t.Server, thousands(float64(t.Conns)), float64(t.RSSBefore)/1024, float64(t.RSS)/1024, settled, later,
			t.FDsBefore, t.FDs, float64(t.FDs-t.FDsBefore)/float64(t.Conns))
		limits = append(limits, t.Nofile)
	}
	slices.Sort(limits)
	fmt.Fprintf(w, "\nwsload: %s\n", strings.Join(slices.Compact(limits), ";"))
}

// printWSIdleLine prints the line websocket.sh shows after each idle test.
func printWSIdleLine(w io.Writer, t Idle) {
	settled, later := t.perConn()
	fmt.Fprintf(w, "idle  %-9s RSS %7.1f -> %7.1f MiB  %5.1f KiB per WebSocket (%5.1f later)  fds %d -> %d\n",
		t.Server, float64(t.RSSBefore)/1024, float64(t.RSS)/1024, settled, later, t.FDsBefore, t.FDs)
}

// runWebSocket carries out the ws-* reports.
func runWebSocket(report, path string, last bool, reference string, w io.Writer) error {
	if report == "ws-idle" {
		tests, err := readFile[Idle](path)
		if err != nil {
			return err
		}
		if !last {
			printWSIdle(w, tests)
			return nil
		}
		if len(tests) == 0 {
			return fmt.Errorf("report: %s: no idle tests", path)
		}
		printWSIdleLine(w, tests[len(tests)-1])
		return nil
	}
	runs, err := readFile[WSRun](path)
	if err != nil {
		return err
	}
	switch {
	case report == "ws-throughput":
		rows, err := wsThroughput(runs, reference)
		if err != nil {
			return fmt.Errorf("report: %s: %w", path, err)
		}
		printWSThroughput(w, rows, reference)
	case !last:
		printWSRuns(w, runs)
	case len(runs) == 0:
		return fmt.Errorf("report: %s: no runs", path)
	default:
		printWSRunLine(w, runs[len(runs)-1])
	}
	return nil
}
