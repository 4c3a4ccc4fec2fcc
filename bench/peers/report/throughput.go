package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/fastserve/fastserve/bench"
)

// peer is one server at one connection count and, for proxy.sh, one
// answer size (empty for run.sh's runs).
type peer struct {
	Body   string
	Conns  int
	Server string
}

// row is a peer's figures over the rounds: the medians and spreads of its
// runs' figures, and its ratios to the reference server and to the ceiling,
// each the median of the per-round ratios.
type row struct {
	peer
	RPS              bench.Spread // wrk's req/s
	PerCPU           bench.Spread // requests per server CPU-second
	UserPerRequest   bench.Spread // µs
	KernelPerRequest bench.Spread // µs
	Busy             bench.Spread // share of the run the server was on its CPU
	RSS              bench.Spread // MiB
	RPSVsReference   bench.Spread
	CPUVsReference   bench.Spread // of requests per server CPU-second
	CPUVsCeiling     bench.Spread // of requests per server CPU-second

	// proxy.sh's: the upstream's CPU time per request (µs) and the
	// connections it accepted during a run.
	UpstreamPerRequest bench.Spread
	UpstreamConns      bench.Spread
}

// paired holds two sides' values round by round, for bench.RatioOf.
type paired struct{ a, b []float64 }

func (p *paired) add(a, b float64) {
	p.a = append(p.a, a)
	p.b = append(p.b, b)
}

// throughput summarises the runs by peer: bodies in the order the runs first
// name them, within each connection counts in that order and, within each,
// servers in that order.
func throughput(runs []Run, reference, ceiling string) ([]row, error) {
	byRound := map[peer]map[int]Run{}
	var conns, rounds []int
	var servers, bodies []string
	for _, r := range runs {
		p := peer{r.Body, r.Conns, r.Server}
		if byRound[p] == nil {
			byRound[p] = map[int]Run{}
		}
		if _, dup := byRound[p][r.Round]; dup {
			return nil, fmt.Errorf("two runs of %s at %d conns in round %d", r.label(), r.Conns, r.Round)
		}
		byRound[p][r.Round] = r
		if !slices.Contains(bodies, r.Body) {
			bodies = append(bodies, r.Body)
		}
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

	var rows []row
	for _, body := range bodies {
		for _, c := range conns {
			for _, s := range servers {
				if p := (peer{body, c, s}); byRound[p] != nil {
					rows = append(rows, summarise(p, byRound, rounds, reference, ceiling))
				}
			}
		}
	}
	return rows, nil
}

// summarise is p's row: its figures over the rounds, and its ratios to the
// reference and the ceiling at the same body and connection count.
func summarise(p peer, byRound map[peer]map[int]Run, rounds []int, reference, ceiling string) row {
	var rps, perCPU, user, kernel, busy, rss, upstream, upConns []float64
	var rpsRef, cpuRef, cpuCeiling paired
	for _, round := range rounds {
		r, ok := byRound[p][round]
		if !ok || r.Requests == 0 {
			continue // a run in which no request completed measured nothing
		}
		rps = append(rps, r.RPS)
		perCPU = append(perCPU, r.perCPU())
		user = append(user, r.userPerRequest())
		kernel = append(kernel, r.kernelPerRequest())
		busy = append(busy, r.busy())
		rss = append(rss, float64(r.RSS)/1024)
		upstream = append(upstream, r.upstreamPerRequest())
		upConns = append(upConns, float64(r.UpstreamConns))
		if ref, ok := byRound[peer{p.Body, p.Conns, reference}][round]; ok && ref.Requests > 0 {
			rpsRef.add(r.RPS, ref.RPS)
			cpuRef.add(r.perCPU(), ref.perCPU())
		}
		if top, ok := byRound[peer{p.Body, p.Conns, ceiling}][round]; ok && top.Requests > 0 {
			cpuCeiling.add(r.perCPU(), top.perCPU())
		}
	}
	return row{
		peer:               p,
		RPS:                bench.SpreadOf(rps),
		PerCPU:             bench.SpreadOf(perCPU),
		UserPerRequest:     bench.SpreadOf(user),
		KernelPerRequest:   bench.SpreadOf(kernel),
		Busy:               bench.SpreadOf(busy),
		RSS:                bench.SpreadOf(rss),
		RPSVsReference:     bench.RatioOf(rpsRef.a, rpsRef.b),
		CPUVsReference:     bench.RatioOf(cpuRef.a, cpuRef.b),
		CPUVsCeiling:       bench.RatioOf(cpuCeiling.a, cpuCeiling.b),
		UpstreamPerRequest: bench.SpreadOf(upstream),
		UpstreamConns:      bench.SpreadOf(upConns),
	}
}

// printThroughput prints the rows as run.sh's throughput table, the ratio to
// the reference in requests per CPU-second in bold: the headline figure.
func printThroughput(w io.Writer, rows []row, reference, ceiling string) {
	fmt.Fprintf(w, "| server | conns | req/s | req per server CPU-s | server µs per request: user + kernel | server CPU busy | server RSS under load | req/s vs %s | req/CPU-s vs %s | req/CPU-s vs %s |\n",
		reference, reference, ceiling)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %s [%s-%s] | **%s** [%s-%s] | %.2f + %.2f | %.0f%% | %.0f MiB | %s | **%s** | %s |\n",
			r.Server, r.Conns,
			thousands(r.RPS.Median), thousands(r.RPS.Min), thousands(r.RPS.Max),
			thousands(r.PerCPU.Median), thousands(r.PerCPU.Min), thousands(r.PerCPU.Max),
			r.UserPerRequest.Median, r.KernelPerRequest.Median, 100*r.Busy.Median, r.RSS.Median,
			ratio(r.RPSVsReference), ratio(r.CPUVsReference), ratio(r.CPUVsCeiling))
	}
}

// ratio prints a ratio's median [min-max], or "-" where no round had both
// sides.
func ratio(s bench.Spread) string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f [%.2f-%.2f]", s.Median, s.Min, s.Max)
}

// thousands prints x rounded to a whole number, its thousands separated by
// commas.
func thousands(x float64) string {
	s := strconv.FormatFloat(x, 'f', 0, 64)
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return sign + s
}

// printRuns prints every run as a row of run.sh's table, in the file's order.
func printRuns(w io.Writer, runs []Run) {
	fmt.Fprintln(w, "| round | conns | server | req/s | requests | server CPU-s (user + kernel) | req per server CPU-s | wrk errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range runs {
		fmt.Fprintf(w, "| %d | %d | %s | %.0f | %d | %.2f (%.2f + %.2f) | %.0f | %d |\n",
			r.Round, r.Conns, r.label(), r.RPS, r.Requests, r.cpu(), r.user(), r.cpu()-r.user(), r.perCPU(), r.Errors)
	}
}

// printRunLine prints the line run.sh shows after each run.
func printRunLine(w io.Writer, r Run) {
	fmt.Fprintf(w, "round %d  c=%-5d %-9s %9.0f req/s  server CPU %6.2f s (%3.0f%%)  %8.0f req/CPU-s  errors %d\n",
		r.Round, r.Conns, r.label(), r.RPS, r.cpu(), 100*r.busy(), r.perCPU(), r.Errors)
}
