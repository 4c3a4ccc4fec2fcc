// Command report prints the reports of bench/peers/run.sh and
// bench/peers/ab.sh from their raw measurements, with the bench package's
// statistics: medians, [min-max] spreads, and ratios between servers as the
// median of the per-round ratios (bench.SpreadOf, bench.RatioOf).
//
// The scripts do what only a shell does well (start and pin the servers, run
// wrk, read /proc) and append one JSON object per measurement to a file: a
// Run per wrk run, an Idle per idle-memory test (record.go has the fields).
// report reads such a file and prints:
//
//	report throughput [-reference nginx] [-ceiling ceiling] RUNS
//	    run.sh's throughput table: per server and connection count, medians
//	    [min-max] over the rounds and the ratios to the reference server and
//	    to the ceiling
//	report runs [-last] RUNS
//	    run.sh's table of every run; with -last, the line run.sh prints after
//	    each run, for the file's last run
//	report idle [-last] IDLE
//	    run.sh's table of memory per idle connection; with -last, the line
//	    it prints after each idle test, for the file's last one
//	report ab [-last] RUNS
//	    ab.sh's median [min-max] of the per-round ratios B/A of requests per
//	    server CPU-second; with -last, the line it prints after each run
//	report proxy [-reference nginx] RUNS
//	    proxy.sh's table: per proxy, body and connection count, run.sh's
//	    figures for the proxy, the upstream's CPU per request and the
//	    connections it accepted, and the ratios to the reference proxy
//	report cpu TRACES
//	    bench/peers/profile.sh's breakdown of a CPU profile, from the output
//	    of go tool pprof -traces: each stack's time in the first of a list
//	    of groups it matches (system calls by kind, GC, clocks, timers, the
//	    scheduler, crypto, the proxy's steps, fasthttp, the server), and
//	    the cumulative share of the functions of interest
//	report ws-throughput [-reference nginx] WSRUNS
//	    websocket.sh's echo table: per proxy and connection count, medians
//	    [min-max] of messages per proxy CPU-second and latency, and the
//	    ratios to the reference proxy
//	report ws-runs [-last] WSRUNS
//	    websocket.sh's table of every echo run; with -last, its line
//	report ws-idle [-last] IDLE
//	    websocket.sh's table of memory per idle WebSocket (Idle records
//	    whose connections are WebSockets); with -last, its line
//
// Bodies, connection counts and servers are reported in the order the file
// first names them, which is the order the scripts ran them in.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `usage:
  report throughput [-reference nginx] [-ceiling ceiling] RUNS
  report runs [-last] RUNS
  report idle [-last] IDLE
  report ab [-last] RUNS
  report proxy [-reference nginx] RUNS
  report cpu TRACES
  report ws-throughput [-reference nginx] WSRUNS
  report ws-runs [-last] WSRUNS
  report ws-idle [-last] IDLE`

// errUsage is a command line report does not understand.
var errUsage = errors.New("report: bad command line")

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, usage)
		}
		os.Exit(2)
	}
}

// run carries out one report command line, printing to w.
func run(args []string, w io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	f := flag.NewFlagSet("report "+args[0], flag.ContinueOnError)
	f.SetOutput(io.Discard)
	var last bool
	var reference, ceiling string
	switch args[0] {
	case "throughput":
		f.StringVar(&reference, "reference", "nginx", "the server the others are measured against")
		f.StringVar(&ceiling, "ceiling", "ceiling", "the server that is the ceiling")
	case "proxy", "ws-throughput":
		f.StringVar(&reference, "reference", "nginx", "the proxy the others are measured against")
	case "cpu":
	case "runs", "idle", "ab", "ws-runs", "ws-idle":
		f.BoolVar(&last, "last", false, "print the line for the file's last measurement only")
	default:
		return fmt.Errorf("%w: unknown report %q", errUsage, args[0])
	}
	if err := f.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if f.NArg() != 1 {
		return fmt.Errorf("%w: want one file, got %d arguments", errUsage, f.NArg())
	}
	path := f.Arg(0)
	switch args[0] {
	case "throughput":
		runs, err := readFile[Run](path)
		if err != nil {
			return err
		}
		rows, err := throughput(runs, reference, ceiling)
		if err != nil {
			return fmt.Errorf("report: %s: %w", path, err)
		}
		printThroughput(w, rows, reference, ceiling)
	case "proxy":
		runs, err := readFile[Run](path)
		if err != nil {
			return err
		}
		rows, err := throughput(runs, reference, "")
		if err != nil {
			return fmt.Errorf("report: %s: %w", path, err)
		}
		printProxy(w, rows, reference)
		printRunWarnings(w, runs)
	case "cpu":
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		defer f.Close()
		stacks, err := readTraces(f)
		if err != nil {
			return fmt.Errorf("report: %s: %w", path, err)
		}
		groups, cum, total := cpuShares(stacks)
		printCPU(w, groups, cum, total)
	case "runs":
		runs, err := readFile[Run](path)
		if err != nil {
			return err
		}
		if !last {
			printRuns(w, runs)
			return nil
		}
		if len(runs) == 0 {
			return fmt.Errorf("report: %s: no runs", path)
		}
		printRunLine(w, runs[len(runs)-1])
	case "idle":
		tests, err := readFile[Idle](path)
		if err != nil {
			return err
		}
		if !last {
			printIdle(w, tests)
			return nil
		}
		if len(tests) == 0 {
			return fmt.Errorf("report: %s: no idle tests", path)
		}
		printIdleLine(w, tests[len(tests)-1])
	case "ab":
		runs, err := readFile[Run](path)
		if err != nil {
			return err
		}
		if last {
			if len(runs) == 0 {
				return fmt.Errorf("report: %s: no runs", path)
			}
			printABLine(w, runs[len(runs)-1])
			return nil
		}
		r, err := abRatio(runs)
		if err != nil {
			return fmt.Errorf("report: %s: %w", path, err)
		}
		fmt.Fprintf(w, "B/A req per server CPU-s: median %.3f [%.3f-%.3f] over %d rounds\n", r.Median, r.Min, r.Max, r.N)
	default:
		return runWebSocket(args[0], path, last, reference, w)
	}
	return nil
}
