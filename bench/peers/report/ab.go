package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/fastserve/fastserve/bench"
)

// abRatio is ab.sh's result: requests per server CPU-second of B over A's,
// the median of the per-round ratios. ab.sh names its two servers A and B.
func abRatio(runs []Run) (bench.Spread, error) {
	a, b := map[int]Run{}, map[int]Run{}
	var rounds []int
	for _, r := range runs {
		var side map[int]Run
		switch r.Server {
		case "A":
			side = a
		case "B":
			side = b
		default:
			return bench.Spread{}, fmt.Errorf("server must be A or B, got %q", r.Server)
		}
		if _, dup := side[r.Round]; dup {
			return bench.Spread{}, fmt.Errorf("two runs of %s in round %d", r.Server, r.Round)
		}
		side[r.Round] = r
		if _, ok := a[r.Round]; ok {
			if _, ok := b[r.Round]; ok {
				rounds = append(rounds, r.Round)
			}
		}
	}
	var ba paired
	for _, round := range rounds {
		ba.add(b[round].perCPU(), a[round].perCPU())
	}
	s := bench.RatioOf(ba.a, ba.b)
	if s.N == 0 {
		return s, errors.New("no round measured both A and B (with A's CPU time)")
	}
	return s, nil
}

// printABLine prints the line ab.sh shows after each run.
func printABLine(w io.Writer, r Run) {
	fmt.Fprintf(w, "round %d %s: %d requests, %d ms server CPU, %.0f req/CPU-s\n",
		r.Round, r.Server, r.Requests, r.CPUTicks*1000/r.ClockTick, r.perCPU())
}
