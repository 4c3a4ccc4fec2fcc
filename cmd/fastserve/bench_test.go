package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBenchCommand(t *testing.T) {
	env := childEnv(t)
	in := serve(t, env)
	url := "https://" + in.https + "/"

	r := run(t, env, "bench", "-k", "-c", "4", "-n", "300", "--json", url)
	require.Equal(t, 0, r.code, r.stderr)
	var got struct {
		Requests uint64  `json:"requests"`
		Errors   uint64  `json:"errors"`
		RPS      float64 `json:"rps"`
		Latency  map[string]int64
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, uint64(300), got.Requests)
	assert.Zero(t, got.Errors)
	assert.Greater(t, got.RPS, 0.0)
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		assert.Greater(t, got.Latency[k], int64(0), k)
	}

	r = run(t, env, "bench", "-k", "-c", "2", "-n", "100", "--pipeline", "4", url)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "closed loop, pipeline 4")
	assert.Contains(t, r.stdout, "requests   100 (")
	assert.NotContains(t, r.stdout, "\r", "no progress line when stdout is not a terminal")

	r = run(t, env, "bench", "-c", "1", "-d", "300ms", url)
	assert.Equal(t, 1, r.code, "failed requests fail the command")
	assert.Contains(t, r.stdout, "first error tls: ", "an untrusted certificate is named")
	assert.Contains(t, r.stderr, "requests failed (--allow-errors to exit 0 anyway)")
	r = run(t, env, "bench", "-c", "1", "-d", "300ms", "--allow-errors", url)
	assert.Equal(t, 0, r.code, r.stderr)

	r = run(t, env, "bench", "-k", "-c", "2", "-d", "200ms", "--rounds", "2", "--allow-errors", "--vs", url+"x", url)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "2 rounds of 200ms each")
	assert.Regexp(t, `req/s +\d+ \[\d+-\d+\] +\d+ \[\d+-\d+\] +\d\.\d{3} \[`, r.stdout)

	for _, bad := range [][]string{
		{"bench", "--rate", "10", "--pipeline", "2", "-n", "5", url},
		{"bench", "-c", "x", url},
		{"bench", "-H", "nocolon", url},
		{"bench", "--vs", url, "-n", "5", url},
	} {
		r := run(t, env, bad...)
		assert.Equal(t, 2, r.code, strings.Join(bad, " "))
		assert.Len(t, r.stderrLines(), 1, r.stderr)
	}
}
