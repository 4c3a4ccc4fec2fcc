package static_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/static"
)

// fileVersion is one content of a file that a test writes in place.
type fileVersion struct {
	fill byte
	size int
}

func (v fileVersion) bytes() []byte { return bytes.Repeat([]byte{v.fill}, v.size) }

// TestInPlaceEditNeverTorn: while a file is rewritten in place (the same
// inode: truncate and write, as cp and shell redirection do) between a
// 100 KB and a 150 KB version, every complete response is one version:
// its bytes, its Content-Length and its ETag (before: 200 with the old
// length and ETag and the new file's first 100,000 bytes). A large file,
// sent from disk, may instead be cut short: never completed wrong.
func TestInPlaceEditNeverTorn(t *testing.T) {
	versions := []fileVersion{{'a', 100_000}, {'b', 150_000}}
	for _, tc := range []struct {
		name   string
		maxMem int
		accept string
	}{
		{"memory", 0, ""},
		{"memory/br", 0, "br"},
		{"memory/gzip", 0, "gzip"},
		{"stream", 16 << 10, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, "f.txt")
			require.NoError(t, os.WriteFile(path, versions[0].bytes(), 0o644))
			sf, err := static.New(static.Config{Root: root, MaxMemoryFileBytes: tc.maxMem})
			require.NoError(t, err)
			t.Cleanup(sf.Close)
			ts := tlstest.Handler(t, sf.Handle)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // the editor: in place, as fast as it can, for a bounded time
				defer wg.Done()
				for i := 0; i < 20_000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
					if err != nil {
						return
					}
					v := versions[(i+1)%2]
					b := v.bytes()
					f.Write(b[:v.size/2]) // two writes: a reader may come between them
					f.Write(b[v.size/2:])
					f.Close()
					time.Sleep(time.Millisecond)
				}
			}()
			defer func() { close(stop); wg.Wait() }()

			complete, cut := 0, 0
			deadline := time.Now().Add(3 * time.Second)
			var c net.Conn
			var br *bufio.Reader
			for n := 0; n < 600 && time.Now().Before(deadline); n++ {
				if c == nil {
					c = ts.Dial(t)
					br = bufio.NewReader(c)
				}
				req := "GET /f.txt HTTP/1.1\r\nHost: localhost\r\n"
				if tc.accept != "" {
					req += "Accept-Encoding: " + tc.accept + "\r\n"
				}
				_, err := io.WriteString(c, req+"\r\n")
				require.NoError(t, err)
				resp := fasthttp.AcquireResponse()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if err := resp.Read(br); err != nil {
					cut++ // cut short: allowed for a file sent from disk only
					assert.Equal(t, "stream", tc.name, "a file read whole is never cut: %v", err)
					c.Close()
					c = nil
					fasthttp.ReleaseResponse(resp)
					continue
				}
				if resp.StatusCode() == 503 {
					fasthttp.ReleaseResponse(resp)
					continue // changing three times over while read: allowed, says Retry-After
				}
				require.Equal(t, 200, resp.StatusCode())
				body, err := resp.BodyUncompressed()
				require.NoError(t, err)
				// One state of the file: one fill, as long as the ETag
				// and Content-Length say. (A write in progress is a state
				// too: a reader such as cat sees it; what may never be
				// seen is two versions in one response.)
				fill := byte('a')
				if len(body) > 0 {
					fill = body[0]
				}
				require.Equal(t, len(body), bytes.Count(body, []byte{fill}), "response %d mixes versions (%d bytes)", n, len(body))
				assert.Regexp(t, fmt.Sprintf(`^"[0-9a-f]+-%x(-[a-z]+)?"$`, len(body)), string(resp.Header.Peek("ETag")),
					"the ETag %s is the version's (%d bytes)", resp.Header.Peek("ETag"), len(body))
				if tc.accept == "" {
					assert.Equal(t, len(body), resp.Header.ContentLength())
				}
				complete++
				fasthttp.ReleaseResponse(resp)
			}
			if c != nil {
				c.Close()
			}
			t.Logf("%d complete responses, %d cut short", complete, cut)
			assert.Positive(t, complete)
		})
	}
}

// TestChangeShowsAtOnce: a file changed in place (the same inode, the
// same size and, as rsync -t leaves it, the same modification time) shows
// within 0.1 s, in every encoding (before: 10 to 20 s, and
// the compressed variant later than the plain one).
func TestChangeShowsAtOnce(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "app.js")
	v1 := strings.Repeat("console.log('one');\n", 100)
	v2 := strings.Repeat("console.log('two');\n", 100)
	require.NoError(t, os.WriteFile(path, []byte(v1), 0o644))
	mtime := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(path, mtime, mtime))
	time.Sleep(1100 * time.Millisecond) // past the change: the version is kept in memory

	sf, err := static.New(static.Config{Root: root})
	require.NoError(t, err)
	t.Cleanup(sf.Close)
	ts := tlstest.Handler(t, sf.Handle)
	c := ts.Dial(t)
	br := bufio.NewReader(c)
	get := func(enc string) (string, string) {
		resp := tlstest.RoundTrip(t, c, br, "GET /app.js HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: "+enc+"\r\n\r\n")
		require.Equal(t, 200, resp.StatusCode())
		body, err := resp.BodyUncompressed()
		require.NoError(t, err)
		return string(body), string(resp.Header.ContentEncoding())
	}
	encs := []string{"identity", "br", "zstd", "gzip"}
	for _, enc := range encs {
		for range 2 { // the second from memory
			body, got := get(enc)
			assert.Equal(t, v1, body, enc)
			if enc != "identity" {
				assert.Equal(t, enc, got)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte(v2), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, os.Chtimes(path, mtime, mtime))
	time.Sleep(150 * time.Millisecond) // a kept version is looked at again after 0.1 s
	for _, enc := range encs {
		body, _ := get(enc)
		assert.Equal(t, v2, body, "%s: the change shows within 0.1 s", enc)
	}
}

// TestSiblingsNeverServed: files next to X named as fasthttp's FS names
// its compressed copies (X.fasthttp.br, .zst, .gz), or as precompressed
// files (X.br, X.gz), are never served for X, and nothing in the root is
// deleted or written (before: FS served them to browsers and deleted
// stale ones).
func TestSiblingsNeverServed(t *testing.T) {
	root := t.TempDir()
	page := strings.Repeat("the real page\n", 100)
	files := map[string]string{"index.html": page}
	for _, suffix := range []string{".fasthttp.br", ".fasthttp.zst", ".fasthttp.gz", ".br", ".gz", ".zst"} {
		files["index.html"+suffix] = "planted " + suffix
	}
	old := time.Now().Add(-time.Hour)
	for name, content := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		require.NoError(t, os.Chtimes(p, old, old)) // older than index.html: "stale"
	}
	require.NoError(t, os.Chtimes(filepath.Join(root, "index.html"), time.Now(), time.Now()))

	sf, err := static.New(static.Config{Root: root})
	require.NoError(t, err)
	t.Cleanup(sf.Close)
	ts := tlstest.Handler(t, sf.Handle)
	c := ts.Dial(t)
	br := bufio.NewReader(c)
	for _, enc := range []string{"br", "zstd", "gzip", "identity"} {
		resp := tlstest.RoundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: "+enc+"\r\n\r\n")
		body, err := resp.BodyUncompressed()
		require.NoError(t, err, enc)
		assert.Equal(t, page, string(body), enc)
	}
	for name, content := range files {
		b, err := os.ReadFile(filepath.Join(root, name))
		require.NoError(t, err, "%s is still there", name)
		assert.Equal(t, content, string(b))
	}
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	assert.Len(t, entries, len(files), "nothing written to the root")
}

// TestOutOfDescriptors: a file that cannot be opened for want of
// descriptors is 503 with Retry-After, never 404 (before: 404 Not Found
// for files that exist, which a CDN may cache); and the connection is
// served again once descriptors are free.
func TestOutOfDescriptors(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "a.txt"), []byte("a"), 0o644))
	sf, err := static.New(static.Config{Root: root})
	require.NoError(t, err)
	t.Cleanup(sf.Close)
	ts := tlstest.Handler(t, sf.Handle)
	c := ts.Dial(t) // the connection is there before descriptors run out
	br := bufio.NewReader(c)

	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	soft := lim.Cur
	low := lim
	low.Cur = 256
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
	var held []*os.File
	release := func() {
		for _, f := range held {
			f.Close()
		}
		held = nil
		lim.Cur = soft
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	t.Cleanup(release)
	for i := 0; i < 300; i++ {
		f, err := os.Open(os.DevNull)
		if err != nil {
			require.ErrorIs(t, err, syscall.EMFILE)
			break
		}
		held = append(held, f)
	}
	require.Less(t, len(held), 300, "descriptors ran out")

	resp := tlstest.RoundTrip(t, c, br, "GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, 503, resp.StatusCode())
	assert.Equal(t, "1", string(resp.Header.Peek("Retry-After")))

	release()
	resp = tlstest.RoundTrip(t, c, br, "GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, "a", string(resp.Body()))
}

// TestStalledDownloadsBounded: clients that ask for large files and read
// nothing hold at most MaxOpenFiles descriptors; the next such request
// gets 503 with Retry-After, files read whole are still served, and the
// slots come back when those clients go (before: every stalled download
// held a descriptor, until accept itself failed).
func TestStalledDownloadsBounded(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "big.bin"), bytes.Repeat([]byte("x"), 8<<20), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "small.txt"), []byte("small"), 0o644))
	sf, err := static.New(static.Config{Root: root, MaxMemoryFileBytes: 64 << 10, MaxOpenFiles: 2})
	require.NoError(t, err)
	t.Cleanup(sf.Close)
	ts := tlstest.Handler(t, sf.Handle)

	var stalled []net.Conn
	for range 2 {
		c := ts.Dial(t)
		_, err := io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
		require.NoError(t, err)
		br := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "HTTP/1.1 200 OK\r\n", line)
		stalled = append(stalled, c) // and reads no more
	}
	c := ts.Dial(t)
	br := bufio.NewReader(c)
	resp := tlstest.RoundTrip(t, c, br, "GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
	assert.Equal(t, 503, resp.StatusCode())
	assert.Equal(t, "1", string(resp.Header.Peek("Retry-After")))
	assert.Equal(t, 200, tlstest.RoundTrip(t, c, br, "GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n").StatusCode())

	for _, s := range stalled {
		s.Close()
	}
	require.Eventually(t, func() bool {
		resp := tlstest.RoundTrip(t, c, br, "GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-0\r\n\r\n")
		return resp.StatusCode() == 206
	}, 10*time.Second, 50*time.Millisecond, "the slots come back")
}
