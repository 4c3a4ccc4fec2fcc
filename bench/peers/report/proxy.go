package main

import (
	"fmt"
	"io"
	"strings"
)

// printProxy prints proxy.sh's table: run.sh's figures for a proxy in front
// of an upstream (the proxy's CPU, the ratio to the reference proxy in
// requests per proxy CPU-second in bold), with the upstream's CPU per
// request and the connections it accepted during a run, which show a
// proxy whose keep-alive pool to its upstream does not hold.
func printProxy(w io.Writer, rows []row, reference string) {
	fmt.Fprintf(w, "| proxy | body | conns | req/s | req per proxy CPU-s | proxy µs per request: user + kernel | proxy CPU busy | proxy RSS under load | upstream µs per request | upstream conns opened per run | req/s vs %s | req/CPU-s vs %s |\n",
		reference, reference)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %d | %s [%s-%s] | **%s** [%s-%s] | %.2f + %.2f | %.0f%% | %.0f MiB | %.2f | %s [%s-%s] | %s | **%s** |\n",
			r.Server, r.Body, r.Conns,
			thousands(r.RPS.Median), thousands(r.RPS.Min), thousands(r.RPS.Max),
			thousands(r.PerCPU.Median), thousands(r.PerCPU.Min), thousands(r.PerCPU.Max),
			r.UserPerRequest.Median, r.KernelPerRequest.Median, 100*r.Busy.Median, r.RSS.Median,
			r.UpstreamPerRequest.Median,
			thousands(r.UpstreamConns.Median), thousands(r.UpstreamConns.Min), thousands(r.UpstreamConns.Max),
			ratio(r.RPSVsReference), ratio(r.CPUVsReference))
	}
}

// printRunWarnings says which runs the tables leave out, those in which no
// request completed, and how many ran with the proxy on its CPU less than
// half the time: there the client's core (wrk and the upstream) was the
// bottleneck, or the machine was shared, and the proxies' fixed costs
// (timers, health checks, GC) weigh more in each request.
func printRunWarnings(w io.Writer, runs []Run) {
	var none []string
	low := 0
	for _, r := range runs {
		switch {
		case r.Requests == 0:
			none = append(none, fmt.Sprintf("round %d %s c=%d", r.Round, r.label(), r.Conns))
		case r.busy() < 0.5:
			low++
		}
	}
	if len(none) > 0 {
		fmt.Fprintf(w, "\nLeft out, no request completed in the run: %s. The client did not get its connections through their "+
			"handshakes in time: its core (shared with the upstream) was starved; lengthen DURATION and WARMUP, or run on a quiet machine.\n",
			strings.Join(none, ", "))
	}
	if low > 0 {
		fmt.Fprintf(w, "\n%d of %d runs had the proxy on its CPU less than half the run: the client's core was the bottleneck or "+
			"the machine was shared; requests per proxy CPU-second still compares the proxies, but their fixed costs weigh more.\n",
			low, len(runs))
	}
}
