package bench

import (
	"context"
	"errors"
	"slices"
)

// Spread is a figure over several runs.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(xs []float64) Spread {
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: m, Min: s[0], Max: s[len(s)-1]}
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
	var rpsR, p50R, p99R []float64
	side := func(s *Summary, r Result) {
		s.Runs = append(s.Runs, r)
		s.Errors += r.Errors
	}
	for range rounds {
		var rs [2]Result
		for i, cfg := range []Config{a, b} {
			t, _ := newTarget(cfg)
			rs[i] = t.run(ctx)
			if ctx.Err() != nil {
				return c, ctx.Err()
			}
		}
		side(&c.A, rs[0])
		side(&c.B, rs[1])
		rpsR = append(rpsR, ratio(rs[0].RPS, rs[1].RPS))
		p50R = append(p50R, ratio(float64(rs[0].Latency.P50), float64(rs[1].Latency.P50)))
		p99R = append(p99R, ratio(float64(rs[0].Latency.P99), float64(rs[1].Latency.P99)))
	}
	for _, s := range []*Summary{&c.A, &c.B} {
		var rps, p50, p99 []float64
		for _, r := range s.Runs {
			rps = append(rps, r.RPS)
			p50 = append(p50, float64(r.Latency.P50))
			p99 = append(p99, float64(r.Latency.P99))
		}
		s.RPS, s.P50, s.P99 = spreadOf(rps), spreadOf(p50), spreadOf(p99)
	}
	c.RPSRatio, c.P50Ratio, c.P99Ratio = spreadOf(rpsR), spreadOf(p50R), spreadOf(p99R)
	return c, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
