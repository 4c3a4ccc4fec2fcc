package bench_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/bench"
)

func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		xs   []float64
		want bench.Spread
	}{
		{"none", nil, bench.Spread{}},
		{"one", []float64{7}, bench.Spread{Median: 7, Min: 7, Max: 7, N: 1}},
		{"odd count, unsorted", []float64{5, 1, 9}, bench.Spread{Median: 5, Min: 1, Max: 9, N: 3}},
		{"even count takes the mean of the middle two", []float64{4, 1, 10, 2}, bench.Spread{Median: 3, Min: 1, Max: 10, N: 4}},
		{"repeated values", []float64{2, 2, 2, 8, 8}, bench.Spread{Median: 2, Min: 2, Max: 8, N: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.xs...)
			assert.Equal(t, tc.want, bench.SpreadOf(tc.xs))
			assert.Equal(t, in, append([]float64(nil), tc.xs...), "SpreadOf leaves its argument in order")
		})
	}
}

func TestRatioOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []float64
		want bench.Spread
	}{
		{"none", nil, nil, bench.Spread{}},
		{"one round", []float64{3}, []float64{2}, bench.Spread{Median: 1.5, Min: 1.5, Max: 1.5, N: 1}},
		{"odd rounds", []float64{1, 4, 9}, []float64{1, 2, 3}, bench.Spread{Median: 2, Min: 1, Max: 3, N: 3}},
		// Per round 1, 2, 0.5 and 4: the median 1.5, where the ratio of the
		// medians, 25/10, would set runs of different rounds against each other.
		{"even rounds, a median of ratios", []float64{10, 20, 30, 40}, []float64{10, 10, 60, 10}, bench.Spread{Median: 1.5, Min: 0.5, Max: 4, N: 4}},
		{"a round where b measured nothing is left out", []float64{2, 5, 6}, []float64{1, 0, 3}, bench.Spread{Median: 2, Min: 2, Max: 2, N: 2}},
		{"no round with b", []float64{1, 2}, []float64{0, 0}, bench.Spread{}},
		{"a zero a is a zero ratio", []float64{0, 2}, []float64{1, 1}, bench.Spread{Median: 1, Min: 0, Max: 2, N: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, bench.RatioOf(tc.a, tc.b))
		})
	}
	assert.Panics(t, func() { bench.RatioOf([]float64{1, 2}, []float64{1}) }, "rounds must pair up")
}
