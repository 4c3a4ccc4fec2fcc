package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Spread is one figure over several runs: its median, its least and
// greatest value, and how many values it is over. The median rather than the
// mean, because on a shared machine a run now and then is slowed by a
// neighbour and a mean would carry that run into the figure; Min and Max show
// how far the runs wandered. The zero Spread (N == 0) is a figure nothing
// measured, to be shown as missing rather than as zero.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// SpreadOf summarises one figure given one value per run. The median of an
// even count is the mean of the two middle values. No values give the zero
// Spread.
func SpreadOf(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// RatioOf summarises a/b taken round by round: a[i] and b[i] are the two
// sides' values in round i, measured one after the other, so that each ratio
// compares two runs that saw the same moment of a noisy machine. It is the
// median of the per-round ratios, not the ratio of the medians, which could
// set one side's quiet run against the other's disturbed one. A round where b
// is zero (nothing measured) has no ratio and is left out of the Spread.
// RatioOf panics if a and b differ in length.
func RatioOf(a, b []float64) Spread {
	if len(a) != len(b) {
		panic(fmt.Sprintf("bench: RatioOf needs one value of each side per round, got %d and %d", len(a), len(b)))
	}
	var rs []float64
	for i := range a {
		if b[i] != 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	return SpreadOf(rs)
}

// Summary is one side of a Comparison.
type Summary struct {
	RPS    Spread   `json:"rps"`
	P50    Spread   `json:"p50_us"`
	P99    Spread   `json:"p99_us"`
	Errors uint64   `json:"errors"`
	Runs   []Result `json:"-"`
}

// Comparison is what Compare measured: each side's figures, and the
// ratios A/B taken round by round (each round runs A then B, so the two
// runs of a ratio saw the same moment of a noisy machine).
type Comparison struct {
	Rounds   int     `json:"rounds"`
	A        Summary `json:"a"`
	B        Summary `json:"b"`
	RPSRatio Spread  `json:"rps_ratio"`
	P50Ratio Spread  `json:"p50_ratio"`
	P99Ratio Spread  `json:"p99_ratio"`
}

// Compare runs a and b alternately, rounds times each (A, B, A, B...),
// and summarizes them. Give each a short Duration: the point is many
// rounds, not long ones.
func Compare(ctx context.Context, a, b Config, rounds int) (Comparison, error) {
	if rounds < 1 {
		return Comparison{}, errors.New("bench: compare needs 1 or more rounds")
	}
	for _, cfg := range []Config{a, b} {
		if _, err := newTarget(cfg); err != nil {
			return Comparison{}, err
		}
	}
	c := Comparison{Rounds: rounds}
	for range rounds {
		var rs [2]Result
		for i, cfg := range []Config{a, b} {
			t, _ := newTarget(cfg)
			rs[i] = t.run(ctx)
			if ctx.Err() != nil {
				return c, ctx.Err()
			}
		}
		for i, s := range []*Summary{&c.A, &c.B} {
			s.Runs = append(s.Runs, rs[i])
			s.Errors += rs[i].Errors
		}
	}
	for _, s := range []*Summary{&c.A, &c.B} {
		s.RPS = SpreadOf(figures(s.Runs, rpsOf))
		s.P50 = SpreadOf(figures(s.Runs, p50Of))
		s.P99 = SpreadOf(figures(s.Runs, p99Of))
	}
	c.RPSRatio = RatioOf(figures(c.A.Runs, rpsOf), figures(c.B.Runs, rpsOf))
	c.P50Ratio = RatioOf(figures(c.A.Runs, p50Of), figures(c.B.Runs, p50Of))
	c.P99Ratio = RatioOf(figures(c.A.Runs, p99Of), figures(c.B.Runs, p99Of))
	return c, nil
}

// figures returns one figure of each run, in the runs' order.
func figures(runs []Result, figure func(Result) float64) []float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = figure(r)
	}
	return xs
}

func rpsOf(r Result) float64 { return r.RPS }
func p50Of(r Result) float64 { return float64(r.Latency.P50) }
func p99Of(r Result) float64 { return float64(r.Latency.P99) }
