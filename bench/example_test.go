package bench_test

import (
	"fmt"

	"github.com/fastserve/fastserve/bench"
)

// Three rounds, each running server A then server B: the ratio A/B is taken
// within each round, then summarised.
func ExampleRatioOf() {
	a := []float64{90_000, 60_000, 95_000} // req/s of A, round by round
	b := []float64{80_000, 50_000, 100_000}
	s := bench.SpreadOf(a)
	fmt.Printf("A: %.0f [%.0f-%.0f]\n", s.Median, s.Min, s.Max)
	r := bench.RatioOf(a, b)
	fmt.Printf("A/B: %.3f [%.3f-%.3f] over %d rounds\n", r.Median, r.Min, r.Max, r.N)
	// Output:
	// A: 90000 [60000-95000]
	// A/B: 1.125 [0.950-1.200] over 3 rounds
}
