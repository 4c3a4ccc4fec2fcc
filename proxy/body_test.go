package proxy_test

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/proxy"
)

// openFilesIn counts this process's open files that are (or were, before
// they lost their name) in dir, from /proc/self/fd.
func openFilesIn(t testing.TB, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}

// dirEntries lists the names in dir.
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestProxySlowUploadsHoldNoUpstreamConnection: clients that stall in the
// middle of an upload larger than BufferBodyBytes hold no upstream
// connection while they do: with MaxConns 1, another client's request is
// answered 200 (not 503 after ConnectTimeout), and the upstream never saw
// a connection or a request from the stalled ones. Their bodies wait in
// temporary files that have no name in the directory.
func TestProxySlowUploadsHoldNoUpstreamConnection(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts the spooled files in /proc/self/fd")
	}
	const stalled = 3
	up := newRawUpstream(t, ok("up"))
	tmp := t.TempDir()
	p := newProxy(t, proxy.Config{
		Routes:      []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}},
		MaxConns:    1,
		BodyTempDir: tmp,
		// A request that waits for the one connection gets 503 after 1 s.
		ConnectTimeout: time.Second,
	})
	ts := startProxy(t, p)

	const size = 1 << 20
	half := make([]byte, size/2)
	for i := range stalled {
		c := ts.Dial(t)
		require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
		_, err := fmt.Fprintf(c, "POST /upload/%d HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", i, size)
		require.NoError(t, err)
		_, err = c.Write(half)
		require.NoError(t, err)
	}
	// Spooled, or (streamed) reaching the upstream.
	eventually(5*time.Second, func() bool { return openFilesIn(t, tmp) == stalled || up.accepted.Load() > 0 })
	assert.Equal(t, stalled, openFilesIn(t, tmp), "each stalled upload is spooled to a file in %s", tmp)
	assert.Empty(t, dirEntries(t, tmp), "the spooled files have no name")

	_, resp, body := proxyExchange(t, ts, "GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "another client gets the upstream's one connection")
	assert.Equal(t, "from up", body)
	var got []string
	for _, s := range up.Seen() {
		got = append(got, s.Method+" "+s.URI)
	}
	assert.Equal(t, []string{"GET /other"}, got, "the stalled uploads never reached the upstream")
	assert.Equal(t, int64(1), up.accepted.Load(), "connections the upstream accepted")
}

// TestProxyBuffersBodies: a body is read whole before it goes upstream,
// and goes with a Content-Length whatever the client sent: in memory up
// to BufferBodyBytes, past it through a temporary file that is gone once
// the request is answered.
func TestProxyBuffersBodies(t *testing.T) {
	up := newRawUpstream(t, func(s seen) string {
		sum := fmt.Sprintf("%d %x", len(s.Body), sha256.Sum256(s.Body))
		return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(sum)) + "\r\n\r\n" + sum
	})
	tmp := t.TempDir()
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}, BodyTempDir: tmp})
	ts := startProxy(t, p)

	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
	}{
		{"length/memory", 1000, false},
		{"length/file", 3<<20 + 7, false},
		{"chunked/memory", 1000, true},
		{"chunked/file", 3<<20 + 7, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := make([]byte, tc.size)
			_, err := rand.Read(body)
			require.NoError(t, err)
			c := ts.Dial(t)
			require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
			bw := bufio.NewWriter(c)
			if tc.chunked {
				fmt.Fprintf(bw, "POST /%s HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n", tc.name)
				for rest := body; len(rest) > 0; {
					n := min(len(rest), 10000)
					fmt.Fprintf(bw, "%x\r\n%s\r\n", n, rest[:n])
					rest = rest[n:]
				}
				bw.WriteString("0\r\n\r\n")
			} else {
				fmt.Fprintf(bw, "POST /%s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", tc.name, len(body))
				bw.Write(body)
			}
			require.NoError(t, bw.Flush())
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			require.NoError(t, err)
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, fmt.Sprintf("%d %x", len(body), sha256.Sum256(body)), string(got), "the body reached the upstream intact")

			s := up.Seen()[len(up.Seen())-1]
			assert.Equal(t, []string{strconv.Itoa(len(body))}, s.header("Content-Length"))
			assert.Empty(t, s.header("Transfer-Encoding"))
			assert.Empty(t, dirEntries(t, tmp), "no file left in the temporary directory")
			if runtime.GOOS == "linux" {
				assert.True(t, eventually(2*time.Second, func() bool { return openFilesIn(t, tmp) == 0 }), "the spooled file is closed")
			}
		})
	}
}

// TestProxyRetriesBufferedBody: a PUT whose body went through a file is
// sent again, whole, on a new connection when the first broke before the
// answer; streamed, it could not be.
func TestProxyRetriesBufferedBody(t *testing.T) {
	var n atomic.Int64
	up := newRawUpstream(t, func(s seen) string {
		if n.Add(1) == 1 {
			return "" // closes unanswered
		}
		sum := fmt.Sprintf("%d %x", len(s.Body), sha256.Sum256(s.Body))
		return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(sum)) + "\r\n\r\n" + sum
	})
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}, BodyTempDir: t.TempDir()})
	ts := startProxy(t, p)
	body := strings.Repeat("b", 200<<10)
	_, resp, got := proxyExchange(t, ts, "PUT /file HTTP/1.1\r\nHost: localhost\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, fmt.Sprintf("%d %x", len(body), sha256.Sum256([]byte(body))), got)
	require.Equal(t, 2, len(up.Seen()), "requests the upstream read")
	assert.Equal(t, len(body), len(up.Seen()[0].Body), "the first attempt sent the whole body")
}

// TestProxyBodyTempDirGone: a body that cannot be spooled (the directory
// is gone) gets 500 and a log line, and never reaches the upstream.
func TestProxyBodyTempDirGone(t *testing.T) {
	up := newRawUpstream(t, ok("up"))
	tmp := filepath.Join(t.TempDir(), "bodies")
	require.NoError(t, os.Mkdir(tmp, 0o700))
	var log syncBuffer
	p := newProxy(t, proxy.Config{Routes: []proxy.Route{{Path: "/", Upstreams: []string{up.URL()}}}, BodyTempDir: tmp, Logger: slogTo(&log)})
	ts := startProxy(t, p)
	require.NoError(t, os.Remove(tmp))

	body := strings.Repeat("b", 100<<10)
	_, resp, _ := proxyExchange(t, ts, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Contains(t, log.String(), `level=ERROR msg="request body not buffered" dir=`+tmp)
	assert.Empty(t, up.Seen())
}
