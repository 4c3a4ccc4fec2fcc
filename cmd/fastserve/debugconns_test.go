package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDebugConnsNoDeadPeerBound: with keep-alive off nothing bounds how
// long a vanished idle peer's connection stays, and /debug/conns leaves
// dead_peer_after_seconds out (before: 0, which reads as "at once").
func TestDebugConnsNoDeadPeerBound(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t), "serve", "--keepalive=false")
	defer func() { in.signal(15); in.wait(exitTimeout) }()
	c := dial(t, in.https, insecure)
	c.mustGet(t, "/")
	resp, body := adminGet(t, in, "/debug/conns")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"keepalive": false`)
	assert.NotContains(t, body, "dead_peer_after_seconds", body)
}
