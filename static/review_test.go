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
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/static"
)

type client struct {
	t  *testing.T
	ts *tlstest.Server
	c  net.Conn
	br *bufio.Reader
}

func newClient(t *testing.T, cfg static.Config) (*client, *static.Files) {
	sf, err := static.New(cfg)
	require.NoError(t, err)
	t.Cleanup(sf.Close)
	ts := tlstest.Handler(t, sf.Handle)
	return &client{t: t, ts: ts}, sf
}

func (cl *client) do(method, path string, hdrs ...string) *fasthttp.Response {
	cl.t.Helper()
	if cl.c == nil {
		cl.c = cl.ts.Dial(cl.t)
		cl.br = bufio.NewReader(cl.c)
	}
	req := method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n"
	for _, h := range hdrs {
		req += h + "\r\n"
	}
	req += "\r\n"
	cl.c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(cl.c, req)
	require.NoError(cl.t, err)
	resp := &fasthttp.Response{}
	if method == "HEAD" {
		resp.SkipBody = true
	}
	if err := resp.Read(cl.br); err != nil {
		cl.c.Close()
		cl.c = nil
		cl.t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.ConnectionClose() {
		cl.c.Close()
		cl.c = nil
	}
	return resp
}

func oldFiles(t *testing.T, root string, files map[string]string) {
	for name, content := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		old := time.Now().Add(-time.Hour)
		require.NoError(t, os.Chtimes(p, old, old))
	}
}

// TestRanges: range edge cases against RFC 9110 14.1-14.4, in memory and
// streamed; an end past the file means its end.
func TestRanges(t *testing.T) {
	root := t.TempDir()
	oldFiles(t, root, map[string]string{"five.bin": "01234", "empty.bin": ""})
	big := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB, streamed
	require.NoError(t, os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644))
	for _, maxMem := range []int{0, 1000} {
		cl, _ := newClient(t, static.Config{Root: root, MaxMemoryFileBytes: maxMem})
		for _, tc := range []struct {
			path, rng string
			status    int
			body, cr  string
		}{
			{"/five.bin", "bytes=0-0", 206, "0", "bytes 0-0/5"},
			{"/five.bin", "bytes=-0", 416, "", "bytes */5"},
			{"/five.bin", "bytes=5-", 416, "", "bytes */5"},
			{"/five.bin", "bytes=4-", 206, "4", "bytes 4-4/5"},
			{"/five.bin", "bytes=-10", 206, "01234", "bytes 0-4/5"},
			{"/five.bin", "bytes=2-1", 416, "", "bytes */5"}, // invalid
			{"/five.bin", "bytes=0-99999999999999999999999", 206, "01234", "bytes 0-4/5"},
			{"/five.bin", "bytes=-1-2", 416, "", "bytes */5"},
			{"/five.bin", "bytes=1-2,3-4", 200, "01234", ""},
			{"/five.bin", "bytes=1-2, 3-4", 200, "01234", ""},
			{"/five.bin", "items=1-2", 200, "01234", ""},
			{"/five.bin", "Bytes=1-2", 206, "12", "bytes 1-2/5"}, // unit is case-insensitive (RFC 9110 14.1)
			{"/five.bin", "bytes= 1-2", 206, "12", "bytes 1-2/5"},
			{"/empty.bin", "bytes=0-0", 416, "", "bytes */0"},
			{"/empty.bin", "bytes=-1", 416, "", "bytes */0"},
			{"/empty.bin", "", 200, "", ""},
			{"/big.bin", "bytes=999999-", 206, "9", "bytes 999999-999999/1000000"},
			{"/big.bin", "bytes=1000000-", 416, "", "bytes */1000000"},
			{"/big.bin", "bytes=-3", 206, "789", "bytes 999997-999999/1000000"},
		} {
			hdrs := []string{}
			if tc.rng != "" {
				hdrs = append(hdrs, "Range: "+tc.rng)
			}
			resp := cl.do("GET", tc.path, hdrs...)
			name := fmt.Sprintf("maxMem=%d %s %q", maxMem, tc.path, tc.rng)
			body := string(resp.Body())
			if resp.StatusCode() == 416 {
				body = ""
			}
			want := fmt.Sprintf("%d %q %q", tc.status, tc.body, tc.cr)
			got := fmt.Sprintf("%d %q %q", resp.StatusCode(), body, resp.Header.Peek("Content-Range"))
			if want != got {
				t.Errorf("%s: want %s, got %s", name, want, got)
			}
		}
		// HEAD on the large file: length right, no body
		resp := cl.do("HEAD", "/big.bin")
		assert.Equal(t, 200, resp.StatusCode())
		assert.Equal(t, 1_000_000, resp.Header.ContentLength())
		resp = cl.do("HEAD", "/big.bin", "Range: bytes=10-19")
		assert.Equal(t, 206, resp.StatusCode())
		assert.Equal(t, 10, resp.Header.ContentLength())
		resp = cl.do("GET", "/big.bin")
		assert.Equal(t, big, resp.Body())
	}
}

// TestConditionals: RFC 9110 section 13, each header and their order; a
// 412 is text/plain.
func TestConditionals(t *testing.T) {
	root := t.TempDir()
	page := strings.Repeat("<p>hello</p>\n", 100)
	oldFiles(t, root, map[string]string{"p.html": page, "img.png": "\x89PNG\r\n\x1a\n...."})
	cl, _ := newClient(t, static.Config{Root: root})
	r := cl.do("GET", "/p.html")
	etag, lm := string(r.Header.Peek("ETag")), string(r.Header.Peek("Last-Modified"))
	rbr := cl.do("GET", "/p.html", "Accept-Encoding: br")
	etagBr := string(rbr.Header.Peek("ETag"))
	t.Logf("etag %s br %s lm %s", etag, etagBr, lm)
	require.NotEqual(t, etag, etagBr)
	older := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC1123)
	older = strings.Replace(older, "UTC", "GMT", 1)
	for _, tc := range []struct {
		hdrs   []string
		status int
	}{
		{[]string{"If-None-Match: " + etag}, 304},
		{[]string{"If-None-Match: W/" + etag}, 304},
		{[]string{"If-None-Match: \"x\", " + etag}, 304},
		{[]string{"If-None-Match: *"}, 304},
		{[]string{"If-None-Match: " + etag, "Accept-Encoding: br"}, 200}, // another representation
		{[]string{"If-None-Match: " + etagBr, "Accept-Encoding: br"}, 304},
		{[]string{"If-None-Match: \"x\"", "If-Modified-Since: " + lm}, 200}, // INM wins
		{[]string{"If-Modified-Since: " + lm}, 304},
		{[]string{"If-Modified-Since: " + older}, 200},
		{[]string{"If-Modified-Since: garbage"}, 200},
		{[]string{"If-Match: " + etag}, 200},
		{[]string{"If-Match: W/" + etag}, 412}, // strong comparison
		{[]string{"If-Match: \"x\""}, 412},
		{[]string{"If-Match: *"}, 200},
		{[]string{"If-Unmodified-Since: " + older}, 412},
		{[]string{"If-Unmodified-Since: " + lm}, 200},
		{[]string{"If-Match: " + etag, "If-Unmodified-Since: " + older}, 200}, // IM wins
		{[]string{"If-Match: \"x\"", "If-None-Match: " + etag}, 412},
		{[]string{"Range: bytes=0-1", "If-Range: " + etag}, 206},
		{[]string{"Range: bytes=0-1", "If-Range: W/" + etag}, 200},
		{[]string{"Range: bytes=0-1", "If-Range: \"x\""}, 200},
		{[]string{"Range: bytes=0-1", "If-Range: " + lm}, 206},
		{[]string{"Range: bytes=0-1", "If-Range: " + older}, 200},
		{[]string{"Range: bytes=0-1", "If-Range: " + etagBr, "Accept-Encoding: br"}, 200},
		{[]string{"Range: bytes=0-1", "Accept-Encoding: br"}, 206},
	} {
		r := cl.do("GET", "/p.html", tc.hdrs...)
		assert.Equal(t, tc.status, r.StatusCode(), "%q", tc.hdrs)
		if r.StatusCode() == 304 {
			assert.Empty(t, r.Body())
			assert.Equal(t, "Accept-Encoding", string(r.Header.Peek("Vary")), "%q", tc.hdrs)
		}
		if r.StatusCode() == 206 {
			assert.Empty(t, r.Header.ContentEncoding())
			assert.Equal(t, page[:2], string(r.Body()))
		}
	}
	// 412 body: "Precondition Failed\n" -- with the file's Content-Type?
	r = cl.do("GET", "/img.png", "If-Match: \"nope\"")
	assert.Equal(t, 412, r.StatusCode())
	t.Logf("412 Content-Type %q body %q", r.Header.ContentType(), r.Body())
	assert.NotEqual(t, "image/png", string(r.Header.ContentType()), "412's text body labelled as the file's type")
}

// TestEncodings: preference, q=0, Vary, the body equals the file; a file
// with no extension is never sniffed (nginx's default_type).
func TestEncodings(t *testing.T) {
	root := t.TempDir()
	page := strings.Repeat("body { color: red }\n", 100)
	oldFiles(t, root, map[string]string{"s.css": page, "noext": strings.Repeat("<html><script>alert(1)</script>", 30), "small.css": "a{}"})
	cl, _ := newClient(t, static.Config{Root: root})
	for ae, want := range map[string]string{
		"gzip, deflate, br, zstd": "br",
		"br;q=0, gzip":            "gzip",
		"br;q=0, zstd;q=0, gzip":  "gzip",
		"gzip;q=0":                "",
		"zstd":                    "zstd",
		"identity":                "",
		"*":                       "",
		"BR":                      "br",
		"br;q=0.5, gzip;q=1":      "br", // the server's preference: allowed
		"xbr, gzip":               "gzip",
	} {
		r := cl.do("GET", "/s.css", "Accept-Encoding: "+ae)
		assert.Equal(t, want, string(r.Header.ContentEncoding()), ae)
		assert.Equal(t, "Accept-Encoding", string(r.Header.Peek("Vary")), ae)
		b, err := r.BodyUncompressed()
		require.NoError(t, err)
		assert.Equal(t, page, string(b), ae)
		if want != "" {
			assert.True(t, strings.HasSuffix(string(r.Header.Peek("ETag")), "-"+map[string]string{"br": "br", "zstd": "zst", "gzip": "gz"}[want]+`"`))
		}
	}
	r := cl.do("GET", "/noext")
	t.Logf("extensionless HTML-looking file: Content-Type %q, X-Content-Type-Options %q", r.Header.ContentType(), r.Header.Peek("X-Content-Type-Options"))
	r = cl.do("GET", "/small.css", "Accept-Encoding: br")
	assert.Empty(t, r.Header.ContentEncoding())
}

// TestPathsStayInRoot: traversal, dotfiles, odd names; a directory's
// redirect is percent-encoded; a missing directory is 404.
func TestPathsStayInRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "www")
	require.NoError(t, os.WriteFile(filepath.Join(parent, "secret.txt"), []byte("SECRET"), 0o644))
	oldFiles(t, root, map[string]string{
		".env": "ENV", ".git/config": "GIT", ".well-known/acme": "ACME", ".well-known/.git/x": "WKGIT",
		"a/b.txt": "AB", "ünï.txt": "UNICODE", `back\slash.txt`: "BACK", "sp ace/index.html": "SPACE",
		"q?dir/index.html": "Q", "hash#dir/index.html": "HASH", "pct%dir/index.html": "PCT",
		"index.html": "ROOT",
	})
	require.NoError(t, os.Symlink(filepath.Join(parent, "secret.txt"), filepath.Join(root, "out.txt")))
	require.NoError(t, os.Symlink(parent, filepath.Join(root, "outdir")))
	require.NoError(t, os.Symlink(".env", filepath.Join(root, "env-link")))
	for _, listing := range []bool{false, true} {
		cl, _ := newClient(t, static.Config{Root: root, ListDirectories: listing})
		for path, want := range map[string]int{
			"/.well-known/../.env": 404, "/%2e%65nv": 404, "//.env": 404, "/.well-known/.git/x": 404,
			"/.git/": 404, "/.git/config": 404, "/.git": 404, "/a/../.git/config": 404, "/a/%2e%2e/.env": 404,
			"/.well-known/acme": 200, "/a//b.txt": 200, "/a/b.txt%00": 404, "/a%00/b.txt": 404,
			"/%C3%BCn%C3%AF.txt": 200, "/back%5Cslash.txt": 200, "/a%5C..%5C.env": 404, "/..%5C.env": 404,
			"/..;/.env": 404, "/a/..;/.env": 404, "/out.txt": 404, "/outdir/secret.txt": 404, "/outdir/": 404,
			"/" + strings.Repeat("a/", 3000) + "x": 431, "/" + strings.Repeat("x", 300): 404,
			"/../secret.txt": 404, "/a/b.txt/": 404,
		} {
			r := cl.do("GET", path)
			assert.Equal(t, want, r.StatusCode(), "listing=%v %.60s", listing, path)
			for _, s := range []string{"SECRET", "ENV", "GIT", "WKGIT"} {
				assert.NotContains(t, string(r.Body()), s, "listing=%v %.60s", listing, path)
			}
		}
		r := cl.do("GET", "/env-link")
		t.Logf("symlink to a dotfile inside root: %d %q", r.StatusCode(), r.Body())
		r = cl.do("GET", "/.well-known")
		t.Logf("/.well-known without slash: %d Location %q", r.StatusCode(), r.Header.Peek("Location"))
		r = cl.do("GET", "/nonexistent/")
		t.Logf("listing=%v /nonexistent/: %d", listing, r.StatusCode())
		for _, dir := range []string{"/sp%20ace", "/q%3Fdir", "/hash%23dir", "/pct%25dir"} {
			r := cl.do("GET", dir)
			loc := string(r.Header.Peek("Location"))
			t.Logf("%s: %d Location %q", dir, r.StatusCode(), loc)
			if r.StatusCode() == 301 {
				// follow the Location as a client would
				r2 := cl.do("GET", loc)
				t.Logf("   following: %d %q", r2.StatusCode(), r2.Body())
			}
		}
	}
}

// TestListingNamesArePaths: a file named javascript:... in a listed
// directory links as a path ("./javascript:..."), never a scheme.
func TestListingNamesArePaths(t *testing.T) {
	root := t.TempDir()
	oldFiles(t, root, map[string]string{"up/javascript:alert(document.domain)": "x", "up/\"><img src=x onerror=alert(1)>": "y"})
	cl, _ := newClient(t, static.Config{Root: root, ListDirectories: true})
	r := cl.do("GET", "/up/")
	t.Logf("%s", r.Body())
	assert.NotContains(t, string(r.Body()), `href="javascript:`)
	assert.NotContains(t, string(r.Body()), `<img`)
}

func fdCount(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// TestNoDescriptorLeaks: aborted streams, 304, 412, 416 and HEAD on large
// files give back every descriptor.
func TestNoDescriptorLeaks(t *testing.T) {
	root := t.TempDir()
	big := bytes.Repeat([]byte("x"), 8<<20)
	require.NoError(t, os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644))
	cl, _ := newClient(t, static.Config{Root: root})
	r := cl.do("GET", "/big.bin", "Range: bytes=0-0")
	etag := string(r.Header.Peek("ETag"))
	cl.c.Close()
	cl.c = nil
	time.Sleep(100 * time.Millisecond)
	before := fdCount(t)
	for i := 0; i < 20; i++ {
		cl.do("HEAD", "/big.bin")
		cl.do("GET", "/big.bin", "If-None-Match: "+etag)
		cl.do("GET", "/big.bin", "If-Match: \"no\"")
		cl.do("GET", "/big.bin", "Range: bytes=99999999-")
		cl.do("GET", "/big.bin", "Range: bytes=5-10")
		// aborted: read the headers and a little, then close
		c := cl.ts.Dial(t)
		io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadFull(c, buf)
		c.Close()
	}
	if cl.c != nil {
		cl.c.Close()
		cl.c = nil
	}
	var after int
	for i := 0; i < 50; i++ { // the server notices closed connections on its next write
		time.Sleep(100 * time.Millisecond)
		if after = fdCount(t); after <= before {
			break
		}
	}
	t.Logf("fds before %d after %d", before, after)
	assert.LessOrEqual(t, after, before)
}

// TestFIFONeverWaitedOn: a named pipe under the root is opened without
// blocking and refused (before: the request hung in open(2)).
func TestFIFONeverWaitedOn(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644))
	cl, _ := newClient(t, static.Config{Root: root})
	c := cl.ts.Dial(t)
	io.WriteString(c, "GET /pipe HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp := &fasthttp.Response{}
	err := resp.Read(bufio.NewReader(c))
	// unblock the handler so that the server can shut down
	if err != nil {
		if w, werr := os.OpenFile(filepath.Join(root, "pipe"), os.O_WRONLY|syscall.O_NONBLOCK, 0); werr == nil {
			w.Close()
		}
	}
	require.NoError(t, err, "a request for a FIFO gets no answer in 3 s")
	t.Logf("FIFO: %d", resp.StatusCode())
}

// TestAfterClose503: requests after Close get 503, never 404 (which a CDN
// may cache).
func TestAfterClose503(t *testing.T) {
	root := t.TempDir()
	oldFiles(t, root, map[string]string{"a.txt": "A", "b.txt": "B"})
	cl, sf := newClient(t, static.Config{Root: root})
	require.Equal(t, 200, cl.do("GET", "/a.txt").StatusCode())
	sf.Close()
	time.Sleep(150 * time.Millisecond)
	for _, p := range []string{"/a.txt", "/b.txt", "/"} {
		r := cl.do("GET", p)
		t.Logf("after Close: %s %d", p, r.StatusCode())
		assert.NotEqual(t, 404, r.StatusCode(), p)
	}
}

// TestOutOfDescriptorsEverywhere: out of descriptors on a file in a
// subdirectory, a directory's index, and a listing: 503, never 404.
func TestOutOfDescriptorsEverywhere(t *testing.T) {
	root := t.TempDir()
	oldFiles(t, root, map[string]string{"d/e/f.txt": "F", "d/index.html": "IDX", "l/x": "x"})
	cl, _ := newClient(t, static.Config{Root: root, ListDirectories: true})
	cl.do("GET", "/nothing-yet")
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
	defer release()
	for i := 0; i < 300; i++ {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		held = append(held, f)
	}
	got := map[string]int{}
	for _, p := range []string{"/d/e/f.txt", "/d/", "/l/", "/d"} {
		got[p] = cl.do("GET", p).StatusCode()
	}
	release()
	for p, s := range got {
		assert.Equal(t, 503, s, p)
	}
}
