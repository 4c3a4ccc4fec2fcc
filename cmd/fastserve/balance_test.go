package main

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBalanceThroughBinary: a route's balance: hash with a cookie keeps
// each session on one upstream; a bad balance is named by check with its
// file and line.
func TestBalanceThroughBinary(t *testing.T) {
	t.Parallel()
	a, b := newRecordingUpstream(t, "a"), newRecordingUpstream(t, "b")
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf(`routes:
  - path: /app/
    proxy: [%s, %s]
    balance: hash
    hash-key: cookie:session
`, a.url, b.url))
	in := serve(t, childEnv(t), "--config", cfg)
	c := httpsClient(t, insecure)
	seen := map[string]int{}
	for s := range 40 {
		_, first := get(t, c, "https://"+in.https+"/app/x", "Cookie", fmt.Sprintf("session=%d", s))
		for range 3 {
			_, again := get(t, c, "https://"+in.https+"/app/x", "Cookie", fmt.Sprintf("session=%d", s))
			require.Equal(t, first, again, "session %d moved", s)
		}
		seen[first]++
	}
	assert.Len(t, seen, 2, "sessions on both upstreams: %v", seen)

	bad := writeFile(t, t.TempDir(), "bad.yaml", "routes:\n  - path: /app/\n    proxy: [http://127.0.0.1:9]\n    balance: random\n")
	r := run(t, childEnv(t), "check", "--config", bad)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, bad+`:4: routes[0].balance: random: must be "least-loaded", "round-robin" or "hash"`)
}
