package sites_test

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/sites"
	"github.com/fastserve/fastserve/static"
)

// TestFiles: per-site static options: a single-page application's
// fallback (404s only), Cache-Control on the files' answers, index names,
// listings and dotfiles.
func TestFiles(t *testing.T) {
	on, off := true, false
	r, err := sites.New(sites.Config{Sites: []sites.Site{{
		Hosts: []string{"app.test"},
		Root:  root(t, map[string]string{"index.html": "app shell", "assets/app.js": "js", ".env": "secret"}),
		Files: sites.Files{Fallback: "/index.html", CacheControl: "public, max-age=300"},
	}, {
		Hosts: []string{"docs.test"},
		Root:  root(t, map[string]string{"home.htm": "home", "pub/a.txt": "a", ".well": "dot"}),
		Files: sites.Files{Index: []string{"home.htm"}, Listing: &on, Dotfiles: &on},
	}}})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ts := tlstest.Handler(t, r.Handle)
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	get := func(host, path string) *fasthttp.Response {
		return tlstest.RoundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	}

	resp := get("app.test", "/users/42")
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, "app shell", string(resp.Body()), "the fallback for a client-side route")
	assert.Equal(t, "public, max-age=300", string(resp.Header.Peek("Cache-Control")))
	assert.Equal(t, "js", string(get("app.test", "/assets/app.js").Body()))
	assert.Equal(t, "app shell", string(get("app.test", "/.env").Body()), "hidden, so not found, so the shell")
	resp = tlstest.RoundTrip(t, c, br, "POST /users/42 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\n")
	assert.Equal(t, 405, resp.StatusCode(), "only GET and HEAD fall back")
	assert.Empty(t, resp.Header.Peek("Cache-Control"))

	assert.Equal(t, "home", string(get("docs.test", "/").Body()), "index names")
	assert.Contains(t, string(get("docs.test", "/pub/").Body()), `href="./a.txt"`, "a listing")
	assert.Equal(t, "dot", string(get("docs.test", "/.well").Body()), "dotfiles")
	assert.Empty(t, get("docs.test", "/").Header.Peek("Cache-Control"))

	// A site turns off what the shared settings turn on (before: it could
	// only add).
	r2, err := sites.New(sites.Config{Static: static.Config{Dotfiles: true}, Sites: []sites.Site{{
		Hosts: []string{"private.test"},
		Root:  root(t, map[string]string{"index.html": "p", ".env": "secret"}),
		Files: sites.Files{Dotfiles: &off},
	}}})
	require.NoError(t, err)
	t.Cleanup(r2.Close)
	ts2 := tlstest.Handler(t, r2.Handle)
	c2 := dialNoSNI(t, ts2)
	assert.Equal(t, 404, tlstest.RoundTrip(t, c2, bufio.NewReader(c2), "GET /.env HTTP/1.1\r\nHost: private.test\r\n\r\n").StatusCode())

}

// TestFilesRefused: what a site's files could not honour is refused by
// Validate, as New, naming the field: an index name that is not a file
// name, a fallback that is not a path, or names no file under the root.
func TestFilesRefused(t *testing.T) {
	dir := root(t, map[string]string{"index.html": "shell", "app/x.js": "js"})
	outside := root(t, map[string]string{"secret.html": "outside"})
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.html"), filepath.Join(dir, "out.html")))
	for _, tc := range []struct {
		name  string
		files sites.Files
		want  string
	}{
		{"index empty", sites.Files{Index: []string{"index.html", ""}}, `sites: Sites[0].Files.Index[1] must be a file name, without a directory, got ""`},
		{"index dot-dot", sites.Files{Index: []string{".."}}, `sites: Sites[0].Files.Index[0] must be a file name, without a directory, got ".."`},
		{"index dot", sites.Files{Index: []string{"."}}, `sites: Sites[0].Files.Index[0] must be a file name, without a directory, got "."`},
		{"index path", sites.Files{Index: []string{"app/index.html"}}, `sites: Sites[0].Files.Index[0] must be a file name, without a directory, got "app/index.html"`},
		{"fallback relative", sites.Files{Fallback: "index.html"}, `sites: Sites[0].Files.Fallback must be a file's path, such as /index.html, got "index.html"`},
		{"fallback missing", sites.Files{Fallback: "/app.html"}, `sites: Sites[0].Files.Fallback must be a file under the site's root, got "/app.html"`},
		{"fallback directory", sites.Files{Fallback: "/app"}, `sites: Sites[0].Files.Fallback must be a file under the site's root, got "/app"`},
		{"fallback outside", sites.Files{Fallback: "/out.html"}, `sites: Sites[0].Files.Fallback must be a file under the site's root, got "/out.html"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sites.Config{Sites: []sites.Site{{Hosts: []string{"x.test"}, Root: dir, Files: tc.files}}}
			err := cfg.Validate()
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			var ce *sites.ConfigError
			assert.ErrorAs(t, err, &ce)
			_, err = sites.New(cfg)
			assert.Error(t, err, "New refuses what Validate does")
		})
	}
	err := sites.Config{Sites: []sites.Site{{Hosts: []string{"x.test"}, Root: dir, Files: sites.Files{Fallback: "/app/../index.html"}}}}.Validate()
	assert.NoError(t, err, "a path with dot segments is resolved, as the request's")
}
