package main

import (
	"fmt"
	"io"
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
