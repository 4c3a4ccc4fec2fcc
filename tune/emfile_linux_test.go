package tune_test

import (
	"bufio"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/fastserve/fastserve/tune"
)

// exhaustDescriptors lowers RLIMIT_NOFILE to a little above what is open,
// then opens /dev/null until the process has no descriptor left, none.
// It returns a function that frees them; the limit is restored at cleanup.
// It must not run in parallel with other tests: the limit is the process's.
//
// None is left, not one for the caller to use: a descriptor freed on
// purpose can be taken by any goroutine of the process (the runtime's, a
// past test's) before the one it was meant for, so what a test needs must
// be open before it calls exhaustDescriptors.
func exhaustDescriptors(t *testing.T) (release func()) {
	t.Helper()
	var old unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
	open, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	lim := old
	lim.Cur = uint64(len(open) + 32)
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &lim))
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })

	var files []*os.File
	release = func() {
		for _, f := range files {
			f.Close()
		}
		files = nil
	}
	t.Cleanup(release)
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			require.ErrorIs(t, err, syscall.EMFILE)
			break
		}
		files = append(files, f)
		require.Less(t, len(files), 1000, "RLIMIT_NOFILE did not take effect")
	}
	return release
}

// TestAcceptSurvivesEMFILE runs fasthttp's Serve, which returns for good on
// an accept error, over a tune listener while the process has no file
// descriptors left, and shows that it serves again once they are freed. The
// same scenario over net.Listen stops Serve: that proves the test reaches
// EMFILE.
//
// The client connects and sends its request before the descriptors run
// out, and Serve starts after: the connection waits in the accept queue, so
// the first accept meets EMFILE whatever else the process does meanwhile.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tuned   bool
		survive bool
	}{
		{"net.Listen", false, false},
		{"tune.Listen", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ln net.Listener
			var err error
			if tc.tuned {
				ln, err = tune.Listen("tcp4", "127.0.0.1:0", tune.Options{})
			} else {
				ln, err = net.Listen("tcp4", "127.0.0.1:0")
			}
			require.NoError(t, err)
			defer ln.Close()
			c, err := net.Dial("tcp4", ln.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			require.NoError(t, err)

			release := exhaustDescriptors(t)
			s := &fasthttp.Server{
				Handler: func(ctx *fasthttp.RequestCtx) { ctx.WriteString("ok") },
				Logger:  discard{},
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve(ln) }()
			defer s.Shutdown()

			if !tc.survive {
				select {
				case err := <-served:
					assert.ErrorIs(t, err, syscall.EMFILE, "fasthttp's Serve returned")
				case <-time.After(5 * time.Second):
					t.Fatal("Serve did not return on EMFILE: the test did not exhaust descriptors")
				}
				return
			}

			tl := ln.(*tune.Listener)
			require.Eventually(t, func() bool { return tl.Stats().TransientErrors >= 2 },
				5*time.Second, 5*time.Millisecond, "Accept met EMFILE and retried")
			select {
			case err := <-served:
				t.Fatalf("Serve returned: %v", err)
			default:
			}

			release()
			require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseResponse(resp)
			require.NoError(t, resp.Read(bufio.NewReader(c)), "served once descriptors are free")
			assert.Equal(t, "ok", string(resp.Body()))
			assert.Equal(t, uint64(1), tl.Stats().Accepted)
			select {
			case err := <-served:
				t.Fatalf("Serve returned: %v", err)
			default:
			}
			require.NoError(t, s.Shutdown())
			assert.NoError(t, <-served, "Serve ends cleanly at shutdown")
		})
	}
}

type discard struct{}

func (discard) Printf(string, ...any) {}
