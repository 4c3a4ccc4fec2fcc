package main

import (
	"compress/gzip"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/server"
)

const selfSignedWarning = `level=WARN msg="no certificate configured: serving an in-memory SELF-SIGNED certificate, for development only; clients will not trust it" names="[localhost 127.0.0.1 ::1]"`

// checkDefaultRun checks a server run with no certificate and no root.
func checkDefaultRun(t *testing.T, in *instance, httpsURL string) {
	t.Helper()
	resp, body := get(t, httpsClient(t, insecure), httpsURL+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, body, "<h1>fastserve is running</h1>")
	assert.Equal(t, "fastserve", resp.Header.Get("Server"))

	require.NotNil(t, resp.TLS)
	leaf := resp.TLS.PeerCertificates[0]
	assert.Equal(t, x509.ECDSA, leaf.PublicKeyAlgorithm)
	assert.Equal(t, "localhost", leaf.Subject.CommonName)
	assert.NoError(t, leaf.VerifyHostname("localhost"), "the leaf is for localhost")

	assert.Contains(t, in.log(), selfSignedWarning)
	port := httpsURL[strings.LastIndex(httpsURL, ":")+1:]
	assert.Contains(t, in.log(), `level=WARN msg="development mode: try curl -k https://localhost:`+port+`/"`)

	resp, body = adminGet(t, in, "/healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok\n", body)
}

func TestDefaultRun(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t))
	checkDefaultRun(t, in, "https://"+in.https)

	in.signal(syscall.SIGTERM)
	assert.Equal(t, 0, in.wait(exitTimeout))
	assert.Regexp(t, `level=INFO msg=stopped uptime=\S+ err=<nil>`, in.log())
}

// TestNoArguments runs fastserve exactly as the README says, on the
// default ports :8443 and 127.0.0.1:9090, if they are free.
func TestNoArguments(t *testing.T) {
	for _, addr := range []string{":8443", "127.0.0.1:8443", "127.0.0.1:9090"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("the default address %s is taken (%v): not running fastserve with no arguments", addr, err)
		}
		ln.Close()
	}
	in := started(start(t, childEnv(t)))
	assert.Equal(t, "127.0.0.1:9090", in.admin)
	assert.Contains(t, in.log(), `msg="serving HTTPS" addrs="[[::]:8443 `)
	checkDefaultRun(t, in, "https://127.0.0.1:8443")

	// The client's kept-alive connection gets the default idle drain.
	in.signal(syscall.SIGTERM)
	assert.Equal(t, 0, in.wait(server.DefaultDrainIdleTimeout+exitTimeout))
}

// TestPrecedenceServe: the keep-alive idle time that reaches the kernel,
// as /debug/conns reads it back, is the flag's, else the environment's,
// else the file's.
func TestPrecedenceServe(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", "keepalive-idle: 30s\n")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want float64
	}{
		{"flag", []string{"FASTSERVE_KEEPALIVE_IDLE=40s"}, []string{"--keepalive-idle", "50s"}, 50},
		{"environment", []string{"FASTSERVE_KEEPALIVE_IDLE=40s"}, nil, 40},
		{"file", nil, nil, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := serve(t, childEnv(t, tc.env...), append([]string{"serve", "--config", cfg}, tc.args...)...)
			c := dial(t, in.https, insecure)
			c.mustGet(t, "/")
			ci := debugConn(t, in, c.LocalAddr())
			require.NotNil(t, ci.Socket, "socket error: %s", ci.SocketError)
			assert.True(t, ci.Socket.KeepAlive)
			assert.Equal(t, tc.want, ci.Socket.KeepAliveIdle)
		})
	}
}

func TestDebugConns(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t), "serve",
		"--keepalive-idle", "37s", "--keepalive-interval", "4s", "--keepalive-count", "3", "--tcp-user-timeout", "49s")
	c := dial(t, in.https, insecure)
	c.mustGet(t, "/")
	c.mustGet(t, "/again")

	ci := debugConn(t, in, c.LocalAddr())
	assert.Equal(t, uint64(2), ci.Requests)
	assert.Equal(t, "TLS 1.3", ci.TLSVersion)
	require.NotNil(t, ci.Socket, "socket error: %s", ci.SocketError)
	assert.Equal(t, "ESTABLISHED", ci.Socket.State)
	assert.True(t, ci.Socket.KeepAlive)
	assert.Equal(t, 37.0, ci.Socket.KeepAliveIdle)
	assert.Equal(t, 4.0, ci.Socket.KeepAliveInterval)
	assert.Equal(t, 3, ci.Socket.KeepAliveCount)
	assert.Equal(t, 49.0, ci.Socket.UserTimeout)
	assert.Equal(t, 49.0, ci.Socket.DeadPeerAfter, "idle + interval x count")

	resp, body := adminGet(t, in, "/metrics")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "\nfastserve_requests_total ")
	resp, body = adminGet(t, in, "/healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok\n", body)
	resp, body = adminGet(t, in, "/readyz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ready\n", body)
}

func TestRedirectHTTP(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t), "--redirect-http", "127.0.0.1:0")
	require.NotEmpty(t, in.redirect, "no 'serving redirect' line in:\n%s", in.log())
	_, tlsPort, err := net.SplitHostPort(in.https)
	require.NoError(t, err)

	c := httpsClient(t, nil)
	resp, _ := get(t, c, "http://"+in.redirect+"/some/path?q=1&r=%2F")
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	assert.Equal(t, "https://127.0.0.1:"+tlsPort+"/some/path?q=1&r=%2F", resp.Header.Get("Location"))

	req, err := http.NewRequest(http.MethodGet, "http://"+in.redirect+"/x", nil)
	require.NoError(t, err)
	req.Host = "example.com:80"
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	assert.Equal(t, "https://example.com:"+tlsPort+"/x", resp.Header.Get("Location"))

	// The target answers.
	resp, body := get(t, httpsClient(t, insecure), "https://"+in.https+"/some/path")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "fastserve is running")
}

func TestStatic(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	root := filepath.Join(parent, "www")
	const secret = "TOP SECRET: must never be served"
	writeFile(t, parent, "secret", secret)
	index := "<!doctype html><title>home</title><p>static index</p>\n"
	writeFile(t, root, "index.html", index)
	css := strings.Repeat("body { margin: 0; padding: 0; color: #333; }\n", 400)
	writeFile(t, root, "style.css", css)
	writeFile(t, root, "data.json", `{"answer": 42}`)
	writeFile(t, root, "sub/page.txt", "in sub\n")
	require.NoError(t, os.Symlink("../secret", filepath.Join(root, "link")))

	cache := t.TempDir()
	in := serve(t, childEnv(t, "XDG_CACHE_HOME="+cache), "serve", "--root", root) // the last XDG_CACHE_HOME wins
	c := httpsClient(t, insecure)
	base := "https://" + in.https

	t.Run("index", func(t *testing.T) {
		resp, body := get(t, c, base+"/")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, index, body)
		assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))

		etag := resp.Header.Get("ETag")
		require.NotEmpty(t, etag, "an ETag")
		resp, body = get(t, c, base+"/", "If-None-Match", etag)
		assert.Equal(t, http.StatusNotModified, resp.StatusCode)
		assert.Empty(t, body)
		resp, body = get(t, c, base+"/", "If-None-Match", `"other"`)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, index, body)
	})

	t.Run("range", func(t *testing.T) {
		resp, body := get(t, c, base+"/index.html", "Range", "bytes=2-9")
		assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
		assert.Equal(t, index[2:10], body)
		assert.Equal(t, fmt.Sprintf("bytes 2-9/%d", len(index)), resp.Header.Get("Content-Range"))
	})

	t.Run("gzip", func(t *testing.T) {
		resp, body := get(t, c, base+"/style.css", "Accept-Encoding", "gzip")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
		assert.Less(t, len(body), len(css)/4, "compressed")
		zr, err := gzip.NewReader(strings.NewReader(body))
		require.NoError(t, err)
		plain, err := io.ReadAll(zr)
		require.NoError(t, err)
		assert.Equal(t, css, string(plain))

		resp, body = get(t, c, base+"/style.css")
		assert.Empty(t, resp.Header.Get("Content-Encoding"), "no Accept-Encoding, no compression")
		assert.Equal(t, css, body)

		// Nothing written: not into the root, not into a cache directory.
		for _, dir := range []string{root, cache} {
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, map[string]int{root: 5, cache: 0}[dir], "nothing written into %s", dir)
		}
	})

	t.Run("content types", func(t *testing.T) {
		resp, _ := get(t, c, base+"/style.css")
		assert.Equal(t, "text/css; charset=utf-8", resp.Header.Get("Content-Type"))
		resp, body := get(t, c, base+"/data.json")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, `{"answer": 42}`, body)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		resp, body = get(t, c, base+"/sub/page.txt")
		assert.Equal(t, "in sub\n", body)
		assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
	})

	t.Run("not found", func(t *testing.T) {
		resp, body := get(t, c, base+"/nope.html")
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Equal(t, "Not Found\n", body)
	})

	t.Run("no traversal", func(t *testing.T) {
		rc := dial(t, in.https, insecure)
		for _, path := range []string{
			"/../secret",
			"/%2e%2e/secret",
			"/%2E%2E/secret",
			"/..%2fsecret",
			"/..%2Fsecret",
			"/%2e%2e%2fsecret",
			"//../secret",
			"/sub/../../secret",
			"/sub/%2e%2e/%2e%2e/secret",
			"/./../secret",
			"/..\\secret",
			"/link",
		} {
			resp, body, err := rc.do(http.MethodGet, path)
			require.NoError(t, err, "GET %s", path)
			assert.NotContains(t, body, "TOP SECRET", "GET %s", path)
			assert.NotEqual(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, body)
			if resp.Close {
				rc = dial(t, in.https, insecure)
			}
		}
	})

	// Nothing above made the process unhealthy.
	resp, _ := adminGet(t, in, "/healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, in.log(), "level=ERROR")
}

// TestStaticRefusesBodies: with --root, a POST, PUT or DELETE to a file is
// 405 with Allow: GET, HEAD, not the file, and the body is not read.
func TestStaticRefusesBodies(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "index.html"), []byte("the page"), 0o644))
	in := serve(t, childEnv(t), "serve", "--root", root)
	c := httpsClient(t, insecure)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, err := http.NewRequest(m, "https://"+in.https+"/index.html", strings.NewReader(strings.Repeat("x", 100<<10)))
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err, m)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, m)
		assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"), m)
		assert.NotContains(t, string(body), "the page", m)
	}
	resp, body := get(t, c, "https://"+in.https+"/index.html")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "the page", body)
}
