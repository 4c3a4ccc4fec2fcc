package tune_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/tune"
)

// TestProbe: Probe finds a socket listening on the address, with
// SO_REUSEPORT (which a tuned listener would join without a word) or
// without, and finds none on a free port or port 0.
func TestProbe(t *testing.T) {
	plain, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer plain.Close()
	shared := listen(t, "tcp", "127.0.0.1:0", tune.Options{ReusePort: true})

	for _, ln := range []net.Listener{plain, shared} {
		err := tune.Probe("tcp", ln.Addr().String())
		var iu *tune.AddrInUseError
		require.ErrorAs(t, err, &iu, "a socket listens on %s", ln.Addr())
		assert.Equal(t, ln.Addr().String(), iu.Addr)
		assert.True(t, errors.Is(err, syscall.EADDRINUSE))
	}

	free, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := free.Addr().String()
	require.NoError(t, free.Close())
	assert.NoError(t, tune.Probe("tcp", addr), "closed, the port is free")
	assert.NoError(t, tune.Probe("tcp", "127.0.0.1:0"))
	ln := listen(t, "tcp", addr, tune.Options{ReusePort: true})
	assert.Equal(t, addr, ln.Addr().String(), "the probe left the port free")
}

// TestProbeDualStack: a listener on one IPv4 address of a port is in the
// way of a dual-stack one on the unspecified address of that port, and
// Probe says so (a "tcp6" probe is IPv6-only, and missed it).
func TestProbeDualStack(t *testing.T) {
	v4, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer v4.Close()
	_, port, _ := net.SplitHostPort(v4.Addr().String())
	for _, addr := range []string{":" + port, "0.0.0.0:" + port, "[::]:" + port} {
		var iu *tune.AddrInUseError
		assert.ErrorAs(t, tune.Probe("tcp", addr), &iu, addr)
	}
}

// TestListenInUse: a bind that fails because the address is taken says
// so with an *AddrInUseError.
func TestListenInUse(t *testing.T) {
	taken, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	_, err = tune.Listen("tcp", taken.Addr().String(), tune.Default())
	var iu *tune.AddrInUseError
	require.ErrorAs(t, err, &iu)
	assert.ErrorContains(t, err, "address already in use")
}
