package static_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/static"
)

func TestStatic(t *testing.T) {
	root := t.TempDir()
	secret := filepath.Join(filepath.Dir(root), "secret.txt")
	require.NoError(t, os.WriteFile(secret, []byte("secret"), 0o600))
	t.Cleanup(func() { os.Remove(secret) })
	page := strings.Repeat("fastserve static page. ", 100)
	require.NoError(t, os.WriteFile(filepath.Join(root, "index.html"), []byte(page), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "data.json"), []byte(`{"a":1}`), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(root, "sub"), 0o755))
	require.NoError(t, os.Symlink(secret, filepath.Join(root, "link.txt")))

	sf, err := static.New(static.Config{Root: root})
	require.NoError(t, err)
	t.Cleanup(sf.Close)
	ts := tlstest.Handler(t, sf.Handle)
	c := ts.Dial(t)
	br := bufio.NewReader(c)
	get := func(path, headers string) *fasthttp.Response {
		return tlstest.RoundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n"+headers+"\r\n")
	}

	resp := get("/", "")
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, page, string(resp.Body()), "the index file")
	assert.Equal(t, "text/html; charset=utf-8", string(resp.Header.ContentType()))
	etag, lastMod := string(resp.Header.Peek("ETag")), string(resp.Header.Peek("Last-Modified"))
	require.NotEmpty(t, etag)
	require.NotEmpty(t, lastMod)

	assert.Equal(t, 304, get("/index.html", "If-None-Match: "+etag+"\r\n").StatusCode())
	assert.Equal(t, 304, get("/index.html", "If-Modified-Since: "+lastMod+"\r\n").StatusCode())

	resp = get("/index.html", "Range: bytes=10-19\r\n")
	assert.Equal(t, 206, resp.StatusCode())
	assert.Equal(t, page[10:20], string(resp.Body()))
	assert.Equal(t, fmt.Sprintf("bytes 10-19/%d", len(page)), string(resp.Header.Peek("Content-Range")))

	assert.Equal(t, "application/json", string(get("/data.json", "").Header.ContentType()))

	for _, enc := range []string{"br", "zstd", "gzip"} {
		resp = get("/index.html", "Accept-Encoding: "+enc+"\r\n")
		assert.Equal(t, enc, string(resp.Header.ContentEncoding()), enc)
		body, err := resp.BodyUncompressed()
		require.NoError(t, err, enc)
		assert.Equal(t, page, string(body), enc)
	}
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	assert.Len(t, entries, 4, "the served root is never written to")

	assert.Equal(t, 403, get("/sub/", "").StatusCode(), "no listing without ListDirectories")
	assert.Equal(t, 404, get("/nope", "").StatusCode())
	for _, path := range []string{
		"/../secret.txt", "/..%2fsecret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
		"/sub/../../secret.txt", "//../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt", "/.%2e/secret.txt",
		"/link.txt",
	} {
		resp := get(path, "")
		assert.NotEqual(t, 200, resp.StatusCode(), path)
		assert.NotContains(t, string(resp.Body()), "secret", path)
	}

	_, err = static.New(static.Config{Root: filepath.Join(root, "missing")})
	assert.ErrorContains(t, err, filepath.Join(root, "missing"))
	_, err = static.New(static.Config{Root: filepath.Join(root, "data.json")})
	assert.ErrorContains(t, err, "is not a directory")
}

func TestWelcome(t *testing.T) {
	ts := tlstest.Handler(t, static.Welcome)
	resp, err := ts.HTTPClient(t).Get("https://" + ts.Addr + "/anything")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "fastserve is running")
}

// TestMethods: only GET and HEAD read files; any other method is 405 with
// Allow, and never gets the file (before: a POST got 200 and the file).
func TestMethods(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "index.html"), []byte("page"), 0o644))
	sf, err := static.New(static.Config{Root: root, DisableCompression: true})
	require.NoError(t, err)
	t.Cleanup(sf.Close)
	for _, h := range []struct {
		name    string
		handler fasthttp.RequestHandler
	}{{"files", sf.Handle}, {"welcome", static.Welcome}} {
		ts := tlstest.Handler(t, h.handler)
		c := ts.Dial(t)
		br := bufio.NewReader(c)
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			resp := tlstest.RoundTrip(t, c, br, m+" /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc")
			assert.Equal(t, 405, resp.StatusCode(), "%s %s", h.name, m)
			assert.Equal(t, "GET, HEAD", string(resp.Header.Peek("Allow")), "%s %s", h.name, m)
			assert.NotContains(t, string(resp.Body()), "page")
		}
		assert.Equal(t, 200, tlstest.RoundTrip(t, c, br, "GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n").StatusCode())
	}
}

// TestDotfiles: files and directories whose name begins with a dot are
// 404 by default (before: /.env and /.git/config were served), but for
// /.well-known/; Config.Dotfiles serves them.
func TestDotfiles(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{".env", ".git/config", "dir/.secret", ".well-known/acme", ".well-known/.hidden", "visible.txt"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, f), []byte(f), 0o644))
	}
	for _, allow := range []bool{false, true} {
		sf, err := static.New(static.Config{Root: root, DisableCompression: true, Dotfiles: allow})
		require.NoError(t, err)
		t.Cleanup(sf.Close)
		ts := tlstest.Handler(t, sf.Handle)
		c := ts.Dial(t)
		br := bufio.NewReader(c)
		for path, hiddenByDefault := range map[string]bool{
			"/.env": true, "/.git/config": true, "/dir/.secret": true, "/%2eenv": true, "/dir/../.env": true,
			"/.well-known/acme": false, "/.well-known/.hidden": true, "/visible.txt": false,
		} {
			resp := tlstest.RoundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
			want := 200
			if hiddenByDefault && !allow {
				want = 404
			}
			assert.Equal(t, want, resp.StatusCode(), "Dotfiles=%v %s", allow, path)
		}
	}
}

// TestNoHomeServesCompressed: a system user with no home (what the
// README's systemd unit gives) gets compressed answers, and nothing is
// written anywhere (before: serve failed where check passed, then the
// files went uncompressed): the variants are kept in memory.
func TestNoHomeServesCompressed(t *testing.T) {
	root := t.TempDir()
	page := strings.Repeat("page ", 200)
	require.NoError(t, os.WriteFile(filepath.Join(root, "index.html"), []byte(page), 0o644))
	home := t.TempDir()
	require.NoError(t, os.Chmod(home, 0o500))
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("CACHE_DIRECTORY", "")
	sf, err := static.New(static.Config{Root: root})
	require.NoError(t, err)
	t.Cleanup(sf.Close)
	ts := tlstest.Handler(t, sf.Handle)
	c := ts.Dial(t)
	resp := tlstest.RoundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n")
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, "gzip", string(resp.Header.ContentEncoding()))
	body, err := resp.BodyUncompressed()
	require.NoError(t, err)
	assert.Equal(t, page, string(body))
	for _, dir := range []string{home, root} {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(entries), 1, "nothing written in %s", dir)
	}
}
