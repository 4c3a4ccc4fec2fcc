package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecondInstanceRefused: a second process started on the address of a
// running one exits non-zero, naming the address and --handover, instead
// of joining its SO_REUSEPORT group and taking a share of its connections
// unseen (before: both served, each with its own --root). With
// --share-port on both, both serve; an admin address is never shared.
func TestSecondInstanceRefused(t *testing.T) {
	t.Parallel()
	first := serve(t, childEnv(t), "serve")
	defer func() { first.signal(15); first.wait(exitTimeout) }()

	r := run(t, childEnv(t), "serve", "--addr", first.https, "--admin", "127.0.0.1:0")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "fastserve: --addr="+first.https+" (flag --addr): address "+first.https+" in use by another process")
	assert.Contains(t, r.stderr, "--handover PATH")
	assert.Contains(t, r.stderr, "--share-port")
	assert.NotContains(t, r.stderr, `msg="serving HTTPS"`)

	// What check accepts, serve runs, but for the address: only binding tells.
	r = run(t, childEnv(t), "check", "--addr", first.https)
	assert.Equal(t, 0, r.code, r.stderr)

	t.Run("shared on purpose", func(t *testing.T) {
		a := serve(t, childEnv(t), "serve", "--share-port")
		b := started(start(t, childEnv(t), "serve", "--share-port", "--addr", a.https, "--admin", "127.0.0.1:0", "--drain-idle-timeout", "200ms"))
		assert.Equal(t, a.https, b.https)
		for _, in := range []*instance{a, b} {
			resp, _ := adminGet(t, in, "/readyz")
			assert.Equal(t, 200, resp.StatusCode)
		}
		c := dial(t, a.https, insecure)
		c.mustGet(t, "/")

		r := run(t, childEnv(t), "serve", "--share-port", "--addr", a.https, "--admin", a.admin)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "fastserve: --admin="+a.admin+" (flag --admin): address "+a.admin+" in use by another process; an admin listener is never shared")
		assert.False(t, strings.Contains(r.stderr, `msg="serving HTTPS"`), r.stderr)

		for _, in := range []*instance{a, b} {
			in.signal(15)
			require.Equal(t, 0, in.wait(exitTimeout))
		}
	})
}
