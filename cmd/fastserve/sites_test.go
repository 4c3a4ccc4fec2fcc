package main

import (
	"compress/gzip"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostGet sends GET path with Host host on the open connection c, and
// reads the answer.
func (c *rawConn) hostGet(t testing.TB, host, path string) (*http.Response, string) {
	t.Helper()
	_, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fastserve-test\r\n\r\n", path, host)
	require.NoError(t, err)
	resp, body, err := c.readResponse(http.MethodGet)
	require.NoError(t, err, "GET %s with Host %s", path, host)
	return resp, body
}

// sitesConfig is a two-site config file: a.test with its root, a header,
// a redirect and a route to api with strip-prefix; b.test proxied to b;
// the default site's root is def. rootA and unknown are put in as they
// are given; extra goes at the end.
func sitesConfig(def, rootA, apiURL, bURL, unknown, extra string) string {
	return fmt.Sprintf(`root: %s
unknown-hosts: %s
sites:
  - hosts: [a.test, "*.a.test"]
    root: %s
    headers: {X-Frame-Options: DENY}
    redirects:
      - {path: /old/, to: "https://a.test/new/?x=1", status: 301}
    routes:
      - path: /api/
        proxy: [%s]
        strip-prefix: true
  - hosts: [b.test]
    proxy: %s
%s`, def, unknown, rootA, apiURL, bURL, extra)
}

// siteRoots makes the default site's root and two roots for a.test,
// each with an index.html that names it.
func siteRoots(t *testing.T) (def, a1, a2 string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"default", "a1", "a2"} {
		writeFile(t, dir, filepath.Join(name, "index.html"), name)
	}
	return filepath.Join(dir, "default"), filepath.Join(dir, "a1"), filepath.Join(dir, "a2")
}

// TestSitesServe: each host of a two-site config file gets its own root,
// headers, redirect and routes; any other host the default site, or 421
// with unknown-hosts: refuse.
func TestSitesServe(t *testing.T) {
	t.Parallel()
	api, b := newRecordingUpstream(t, "api"), newRecordingUpstream(t, "b")
	def, a1, _ := siteRoots(t)
	for _, unknown := range []string{"default", "refuse"} {
		t.Run("unknown-hosts="+unknown, func(t *testing.T) {
			cfg := writeFile(t, t.TempDir(), "fastserve.yaml", sitesConfig(def, a1, api.url, b.url, unknown, ""))
			in := serve(t, childEnv(t), "--config", cfg)
			c := dial(t, in.https, insecure)

			resp, body := c.hostGet(t, "A.test:443", "/")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "a1", body, "a.test's root")
			assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), "a.test's header")
			_, body = c.hostGet(t, "www.a.test", "/")
			assert.Equal(t, "a1", body, "*.a.test")

			resp, _ = c.hostGet(t, "a.test", "/old/page")
			assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
			assert.Equal(t, "https://a.test/new/?x=1", resp.Header.Get("Location"), "Location is to:, exactly")
			assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), "a redirect has the site's headers too")

			resp, body = c.hostGet(t, "a.test", "/api/v1/x?q=1")
			assert.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.Equal(t, "from api /v1/x", body, "strip-prefix")
			if reqs := api.requests(); assert.NotEmpty(t, reqs) {
				assert.Equal(t, "/v1/x?q=1", reqs[len(reqs)-1].RequestURI)
			}
			assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), "a route's answer has the site's headers")

			resp, body = c.hostGet(t, "b.test", "/anything")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "from b /anything", body, "b.test's proxy")
			assert.Empty(t, resp.Header.Get("X-Frame-Options"), "a.test's headers are a.test's only")

			// HTTP/1.0 without Host: the site the TLS server name names.
			c10 := dial(t, in.https, &tls.Config{ServerName: "www.a.test", InsecureSkipVerify: true})
			_, err := io.WriteString(c10, "GET / HTTP/1.0\r\n\r\n")
			require.NoError(t, err)
			resp, body, err = c10.readResponse(http.MethodGet)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.Equal(t, "a1", body, "no Host: the site of the server name, not fronting")

			resp, body = c.hostGet(t, "other.test", "/")
			if unknown == "refuse" {
				assert.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode, body)
			} else {
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, "default", body, "the default site: root:")
			}
		})
	}
}

// TestSitesReload: SIGHUP applies an edited config file to an open
// keep-alive connection's next request; a broken one changes nothing and
// is logged with its file and line; a changed setting that needs a
// restart is named; /metrics counts each outcome.
func TestSitesReload(t *testing.T) {
	t.Parallel()
	api, b := newRecordingUpstream(t, "api"), newRecordingUpstream(t, "b")
	def, a1, a2 := siteRoots(t)
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", sitesConfig(def, a1, api.url, b.url, "default", ""))
	in := serve(t, childEnv(t), "--config", cfg)
	c := dial(t, in.https, insecure)
	_, body := c.hostGet(t, "a.test", "/")
	require.Equal(t, "a1", body)
	reloads := func() string {
		_, m := adminGet(t, in, "/metrics")
		var out []string
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, "fastserve_config_reloads_total") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	require.Equal(t, "fastserve_config_reloads_total{result=\"ok\"} 0\nfastserve_config_reloads_total{result=\"failed\"} 0", reloads())

	t.Run("edited", func(t *testing.T) {
		require.NoError(t, os.WriteFile(cfg, []byte(sitesConfig(def, a2, api.url, b.url, "default", "")), 0o644))
		from := in.mark()
		in.signal(syscall.SIGHUP)
		in.waitLog(`msg="configuration reloaded"`, from)
		_, body := c.hostGet(t, "a.test", "/")
		assert.Equal(t, "a2", body, "the same open connection's next request has the new root")
		assert.Contains(t, reloads(), `fastserve_config_reloads_total{result="ok"} 1`)
		_, m := adminGet(t, in, "/metrics")
		assert.Regexp(t, `(?m)^fastserve_config_last_reload_success_timestamp_seconds [1-9]\d+$`, m)
		assert.Contains(t, m, `fastserve_upstream_requests_total{site="b.test",upstream="`+b.url+`"}`, "per-site upstream metrics")
	})

	t.Run("broken", func(t *testing.T) {
		broken := strings.Replace(sitesConfig(def, a1, api.url, b.url, "default", ""), "status: 301", "status: 200", 1)
		require.NoError(t, os.WriteFile(cfg, []byte(broken), 0o644))
		from := in.mark()
		in.signal(syscall.SIGHUP)
		m := in.waitLog(`level=ERROR msg="configuration not reloaded; the previous one stays in use" err="(.*)"`, from)
		assert.Equal(t, `config file `+cfg+`:8: sites[0].redirects[0].status: 200: must be 301, 302, 303, 307 or 308`, m[1])
		_, body := c.hostGet(t, "a.test", "/")
		assert.Equal(t, "a2", body, "the previous configuration still serves")
		assert.Contains(t, reloads(), `fastserve_config_reloads_total{result="failed"} 1`)
	})

	t.Run("restart-only", func(t *testing.T) {
		edited := sitesConfig(def, a1, api.url, b.url, "default", "max-conns-per-ip: 7\n")
		require.NoError(t, os.WriteFile(cfg, []byte(edited), 0o644))
		from := in.mark()
		in.signal(syscall.SIGHUP)
		in.waitLog(`level=WARN msg="setting changed; it needs a restart or --handover, and keeps its running value" setting=max-conns-per-ip running=0 configured=7 source="config file `+regexp.QuoteMeta(cfg)+`:15"`, from)
		in.waitLog(`msg="configuration reloaded"`, from)
		_, body := c.hostGet(t, "a.test", "/")
		assert.Equal(t, "a1", body, "what can change in place is applied")
		assert.Contains(t, reloads(), `fastserve_config_reloads_total{result="ok"} 2`)
	})
}

// TestSitesCheck: check names each bad value of sites: by file, line and
// field, unknown keys too, and exits 2; it prints the sites of a good one.
func TestSitesCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := writeFile(t, dir, "fastserve.yaml", `sites:
  - hosts: [a.test]
    redirects:
      - {path: /old/, to: /new/, status: 200}
    roots: /srv
  - hosts: [A.test]
    routes:
      - {path: /api/, proxy: ftp://x, strip-prefix: yes}
`)
	r := run(t, childEnv(t), "check", "--config", bad)
	assert.Equal(t, 2, r.code, r.stderr)
	for _, want := range []string{
		"fastserve: config file " + bad + ":4: sites[0].redirects[0].status: 200: must be 301, 302, 303, 307 or 308",
		"fastserve: config file " + bad + `:5: sites[0]: unknown key "roots"; a site's keys are ` + siteKeys,
		"fastserve: config file " + bad + ":6: sites[1].hosts[0]: A.test: named twice (a host belongs to one site)",
		"fastserve: config file " + bad + `:8: sites[1].routes[0].proxy[0]: ftp://x: must be an http:// or https:// URL with a host and no path, such as "http://127.0.0.1:9001"`,
	} {
		assert.Contains(t, r.stderrLines(), want)
	}
	r = run(t, childEnv(t), "serve", "--config", bad, "--addr", "127.0.0.1:0", "--admin", "")
	assert.Equal(t, 2, r.code, "serve refuses it as check does: %s", r.stderr)

	_, a1, _ := siteRoots(t)
	good := writeFile(t, dir, "good.yaml", sitesConfig(a1, a1, "http://127.0.0.1:1", "http://127.0.0.1:2", "refuse", ""))
	r = run(t, childEnv(t), "check", "--config", good)
	require.Equal(t, 0, r.code, r.stderr)
	out := strings.Split(r.stdout, "\n")
	assert.Contains(t, out, "sites[0]: hosts=a.test,*.a.test root="+a1+" route=/api/->http://127.0.0.1:1 (strip-prefix) redirects=1 headers=1  # config file "+good+":4")
	assert.Contains(t, out, "sites[1]: hosts=b.test proxy=http://127.0.0.1:2  # config file "+good+":13")
	assert.Contains(t, out, "unknown-hosts: refuse  # config file "+good+":2")
}

// TestSitesRules: the config file's per-site rules reach the server:
// access with basic auth on a route, per-site files (a single-page app's
// fallback, Cache-Control), error pages, header rules (set, delete;
// upstream requests too) and add-prefix; a bad value is named with its
// file and line.
func TestSitesRules(t *testing.T) {
	t.Parallel()
	api := newRecordingUpstream(t, "api")
	dir := t.TempDir()
	writeFile(t, dir, "app/index.html", "shell")
	writeFile(t, dir, "app/404.html", "custom 404")
	// bcrypt of "s3cret", cost 4.
	const hash = "$2a$04$ojPoDgH44KHkw49aC1sv9OhKp9cH5gxq2gAcsZNpG7QMaZR3jINBq"
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf(`sites:
  - hosts: [app.test]
    root: %s
    files: {fallback: /index.html, cache-control: "public, max-age=60"}
    error-pages: {404: 404.html}
    response-headers: {set: {X-Site: app}, delete: [X-Powered-By]}
    routes:
      - path: /admin/
        proxy: %s
        access: {basic-auth: {ops: "%s"}, realm: ops}
        add-prefix: /v2
        request-headers: {set: {X-Team: ops}}
`, filepath.Join(dir, "app"), api.url, hash))
	in := serve(t, childEnv(t), "--config", cfg)
	c := dial(t, in.https, insecure)

	resp, body := c.hostGet(t, "app.test", "/users/7")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "shell", body, "the fallback")
	assert.Equal(t, "public, max-age=60", resp.Header.Get("Cache-Control"))
	assert.Equal(t, "app", resp.Header.Get("X-Site"))

	resp, _ = c.hostGet(t, "app.test", "/admin/x")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `Basic realm="ops", charset="UTF-8"`, resp.Header.Get("WWW-Authenticate"))
	_, err := fmt.Fprintf(c, "GET /admin/x HTTP/1.1\r\nHost: app.test\r\nAuthorization: Basic b3BzOnMzY3JldA==\r\n\r\n")
	require.NoError(t, err)
	resp, body, err = c.readResponse(http.MethodGet)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "from api /v2/admin/x", body, "add-prefix")
	if reqs := api.requests(); assert.NotEmpty(t, reqs) {
		assert.Equal(t, "ops", reqs[len(reqs)-1].Header.Get("X-Team"))
	}
	assert.Equal(t, "app", resp.Header.Get("X-Site"), "on a route's answer too")

	bad := writeFile(t, t.TempDir(), "bad.yaml", "sites:\n  - hosts: [x.test]\n    files: {listing: maybe}\n")
	r := run(t, childEnv(t), "check", "--config", bad)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "bad.yaml:3: sites[0].files.listing: maybe: must be true or false")
	bad = writeFile(t, t.TempDir(), "bad.yaml", "sites:\n  - hosts: [x.test]\n    access: {basic-auth: {ops: x}}\n    access: {deny: [10.0.0.0/8]}\n")
	r = run(t, childEnv(t), "check", "--config", bad)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "bad.yaml:4: sites[0].access: is set twice")
	bad = writeFile(t, t.TempDir(), "bad.yaml", "sites:\n  - hosts: [x.test]\n    access: {allow: [10.0.0.0/33]}\n")
	r = run(t, childEnv(t), "check", "--config", bad)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, `allow: "10.0.0.0/33" is neither an address nor a prefix`)
}

// TestSitesCertificates: a site's cert and key join the server's, picked
// by the TLS server name; a key without its certificate is named by file
// and line.
func TestSitesCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pair := func(host string) (string, string) {
		c, k := filepath.Join(dir, host+".crt"), filepath.Join(dir, host+".key")
		r := run(t, childEnv(t), "cert", "--cert-file", c, "--key-file", k, "--host", host)
		require.Equal(t, 0, r.code, r.stderr)
		return c, k
	}
	ac, ak := pair("a.test")
	bc, bk := pair("b.test")
	writeFile(t, dir, "www/index.html", "page")
	cfgText := fmt.Sprintf(`root: %s
sites:
  - hosts: [a.test]
    root: %s
    cert: %s
    key: %s
  - hosts: [b.test]
    root: %s
    cert: %s
    key: %s
`, filepath.Join(dir, "www"), filepath.Join(dir, "www"), ac, ak, filepath.Join(dir, "www"), bc, bk)
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", cfgText)
	in := serve(t, childEnv(t), "--config", cfg)
	for _, host := range []string{"a.test", "b.test"} {
		c := dial(t, in.https, &tls.Config{ServerName: host, InsecureSkipVerify: true})
		certs := c.ConnectionState().PeerCertificates
		require.NotEmpty(t, certs)
		assert.Equal(t, []string{host}, certs[0].DNSNames, "the site's own certificate for %s", host)
		resp, body := c.hostGet(t, host, "/")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "page", body)
	}

	// A reload that changes a site's certificate files keeps the running
	// ones, and says it needs a restart.
	cc, ck := pair("c.test")
	edited := strings.Replace(strings.Replace(cfgText, bc, cc, 1), bk, ck, 1)
	require.NoError(t, os.WriteFile(cfg, []byte(edited), 0o644))
	from := in.mark()
	in.signal(syscall.SIGHUP)
	in.waitLog(`level=WARN msg="a site's certificate or ACME names changed; they need a restart or --handover, and the running ones stay" source="config file `+regexp.QuoteMeta(cfg)+`:3"`, from) // the sites: list
	in.waitLog(`msg="configuration reloaded"`, from)
	c := dial(t, in.https, &tls.Config{ServerName: "b.test", InsecureSkipVerify: true})
	assert.Equal(t, []string{"b.test"}, c.ConnectionState().PeerCertificates[0].DNSNames, "the running certificate stays")

	bad := writeFile(t, t.TempDir(), "bad.yaml", "sites:\n  - hosts: [x.test]\n    key: "+ak+"\n")
	r := run(t, childEnv(t), "check", "--config", bad)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "bad.yaml:2: sites[0]: cert and key come in pairs")

	// A site's missing file is the site's field, not --cert's.
	missing := filepath.Join(dir, "missing.pem")
	bad = writeFile(t, t.TempDir(), "bad.yaml", fmt.Sprintf("sites:\n  - hosts: [a.test]\n    cert: %s\n    key: %s\n  - hosts: [b.test]\n    cert: %s\n    key: %s\n", ac, ak, bc, missing))
	r = run(t, childEnv(t), "check", "--config", bad, "--cert", ac, "--key", ak)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Equal(t, []string{"fastserve: config file " + bad + ":7: sites[1].key: " + missing + ": open " + missing + ": no such file or directory"}, r.stderrLines())
	bad = writeFile(t, t.TempDir(), "bad.yaml", fmt.Sprintf("sites:\n  - hosts: [a.test]\n    key: %s\n    cert: %s\n", ak, missing))
	r = run(t, childEnv(t), "check", "--config", bad)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Equal(t, []string{"fastserve: config file " + bad + ":4: sites[0].cert: " + missing + ": open " + missing + ": no such file or directory"}, r.stderrLines())
	bad = writeFile(t, t.TempDir(), "bad.yaml", fmt.Sprintf("sites:\n  - hosts: [a.test]\n    cert: %s\n    key: %s\n", ac, bk))
	r = run(t, childEnv(t), "check", "--config", bad)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Equal(t, []string{"fastserve: config file " + bad + ":3: sites[0].cert: " + ac + ": certificate " + ac + " with key " + bk + ": tls: private key does not match public key"}, r.stderrLines())

	bad = writeFile(t, t.TempDir(), "bad.yaml", "sites:\n  - hosts: [\"*.x.test\"]\n    root: "+dir+"\n    acme: true\n")
	r = run(t, childEnv(t), "check", "--config", bad)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "sites[0].acme: true, but every host is a wildcard")
}

// TestReloadCommand: fastserve reload, as nginx -s reload: it asks the
// server through --admin, which re-reads its own config file and answers
// once the new configuration is in use; a configuration the server finds
// invalid exits 2 with the server's words, naming file and line. A
// --config other than the server's is refused (it would be neither read
// nor checked), as a setting flag is (the server keeps its own).
func TestReloadCommand(t *testing.T) {
	t.Parallel()
	api, b := newRecordingUpstream(t, "api"), newRecordingUpstream(t, "b")
	def, a1, a2 := siteRoots(t)
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", sitesConfig(def, a1, api.url, b.url, "default", ""))
	in := serve(t, childEnv(t), "--config", cfg)
	c := dial(t, in.https, insecure)
	_, body := c.hostGet(t, "a.test", "/")
	require.Equal(t, "a1", body)

	require.NoError(t, os.WriteFile(cfg, []byte(sitesConfig(def, a2, api.url, b.url, "default", "")), 0o644))
	r := run(t, childEnv(t), "reload", "--config", cfg, "--admin", in.admin)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "reloaded\n", r.stdout)
	_, body = c.hostGet(t, "a.test", "/")
	assert.Equal(t, "a2", body, "in use when reload returns")

	// The admin address from the config file: its admin: key.
	other := writeFile(t, t.TempDir(), "other.yaml", "admin: "+in.admin+"\n")
	r = run(t, childEnv(t), "reload", "--config", other)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Equal(t, []string{"fastserve: --config=" + other + " (flag --config): this server reads config file " + cfg +
		", not " + other + ": a reload re-reads the server's own file, with the flags and environment it was started with; give its path, or leave --config out (to serve another file, restart the server with it, or use --handover)"}, r.stderrLines())
	r = run(t, childEnv(t, "FASTSERVE_ADMIN="+in.admin), "reload")
	assert.Equal(t, 0, r.code, "no --config: the server's own file; %s", r.stderr)

	broken := strings.Replace(sitesConfig(def, a1, api.url, b.url, "default", ""), "status: 301", "status: 200", 1)
	require.NoError(t, os.WriteFile(cfg, []byte(broken), 0o644))
	r = run(t, childEnv(t), "reload", "--config", cfg, "--admin", in.admin)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Equal(t, []string{"fastserve: configuration not reloaded: config file " + cfg + ":8: sites[0].redirects[0].status: 200: must be 301, 302, 303, 307 or 308"}, r.stderrLines())
	_, body = c.hostGet(t, "a.test", "/")
	assert.Equal(t, "a2", body, "the previous configuration stays")

	r = run(t, childEnv(t), "reload", "--admin", in.admin, "--root", a1)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "fastserve: --root: fastserve reload takes --config and --admin only: the server reloads its own config file with the flags and environment it was started with")

	r = run(t, childEnv(t), "reload", "--config", cfg, "--admin", "")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "send SIGHUP instead")
}

// TestSitesCheckFiles: check refuses a site's files: that serve could not
// honour, naming the file, line and field: an index entry that is empty
// or not a file name, a fallback that names no file under the root.
func TestSitesCheckFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "www/index.html", "shell")
	writeFile(t, dir, "www/app/x.js", "js")
	www := filepath.Join(dir, "www")
	for _, tc := range []struct{ name, files, want string }{
		{"index-empty-item", `{index: [index.html, ""]}`, `:4: sites[0].files.index[1]: empty: give a value, or leave the item out`},
		{"index-empty-list", `{index: []}`, `:4: sites[0].files.index: an empty list: give at least one value, or leave the key out`},
		{"index-dot-dot", `{index: [".."]}`, `:4: sites[0].files.index[0]: ..: must be a file name, without a directory`},
		{"index-path", `{index: [app/index.html]}`, `:4: sites[0].files.index[0]: app/index.html: must be a file name, without a directory`},
		{"fallback-missing", `{fallback: /app.html}`, `:4: sites[0].files.fallback: /app.html: must be a file under the site's root`},
		{"fallback-directory", `{fallback: /app}`, `:4: sites[0].files.fallback: /app: must be a file under the site's root`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf("sites:\n  - hosts: [x.test]\n    root: %s\n    files: %s\n", www, tc.files))
			r := run(t, childEnv(t), "check", "--config", cfg)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Equal(t, []string{"fastserve: config file " + cfg + tc.want}, r.stderrLines())
		})
	}
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf("sites:\n  - hosts: [x.test]\n    root: %s\n    files: {index: [index.htm, index.html], fallback: /index.html}\n", www))
	r := run(t, childEnv(t), "check", "--config", cfg)
	assert.Equal(t, 0, r.code, r.stderr)
}

// TestConfigAliases: YAML anchors, aliases (*name) and merge keys (<<)
// work as YAML says, in sites: and in the flat settings: a merged
// mapping's keys give way to the mapping's own; a value that holds
// itself, or a merge of what is no mapping, is refused by file and line.
func TestConfigAliases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "www/index.html", "page")
	www := filepath.Join(dir, "www")
	cfg := writeFile(t, dir, "fastserve.yaml", fmt.Sprintf(`keepalive-idle: &idle 30s
keepalive-interval: *idle
sites:
  - &base
    hosts: [a.test]
    root: &root %s
    headers: &deny {X-Frame-Options: DENY}
  - <<: *base
    hosts: [b.test]
  - hosts: [c.test]
    root: *root
    headers: *deny
  - <<: [{hosts: [d.test]}, *base]
    files: {cache-control: "max-age=1"}
`, www))
	r := run(t, childEnv(t), "check", "--config", cfg)
	require.Equal(t, 0, r.code, r.stderr)
	out := strings.Split(r.stdout, "\n")
	for i, host := range []string{"a.test", "b.test", "c.test", "d.test"} {
		assert.Contains(t, out, fmt.Sprintf("sites[%d]: hosts=%s root=%s headers=1  # config file %s:%d", i, host, www, cfg, []int{4, 8, 10, 13}[i]))
	}
	assert.Contains(t, out, "keepalive-interval: 30s  # config file "+cfg+":2")

	for _, tc := range []struct{ name, yaml, want string }{
		{"alias-holds-itself", "sites: &s\n  - hosts: [a.test]\n    routes: *s\n", ":3: alias *s: a value may not hold itself"},
		{"merge-scalar", "sites:\n  - hosts: [a.test]\n    <<: /srv\n", ":3: <<: want a mapping, or a list of mappings, to merge (such as <<: *base)"},
		{"unknown-anchor", "sites:\n  - hosts: [a.test]\n    root: *nowhere\n", `:3: yaml: unknown anchor 'nowhere' referenced`},
		{"billion-laughs", laughs(7), ":1: aliases make the file more than 1048576 values, the most a config file may hold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := writeFile(t, t.TempDir(), "bad.yaml", tc.yaml)
			r := run(t, childEnv(t), "check", "--config", bad)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Equal(t, []string{"fastserve: config file " + bad + tc.want}, r.stderrLines())
		})
	}
}

// laughs is a config file of n levels of ten aliases each to the level
// below: 10^n values once expanded.
func laughs(n int) string {
	var b strings.Builder
	b.WriteString("sites:\n  - &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= n; i++ {
		ref := fmt.Sprintf("*l%d", i-1)
		fmt.Fprintf(&b, "  - &l%d [%s]\n", i, strings.TrimSuffix(strings.Repeat(ref+", ", 10), ", "))
	}
	return b.String()
}

// TestDefaultSiteRules: the default site's flat keys take a site's rules,
// read by the same code: headers, access, error pages, redirects, and
// routes with strip-prefix, add-prefix, access and header rules of their
// own; a bad one is named by file, line and key, as a site's is.
func TestDefaultSiteRules(t *testing.T) {
	t.Parallel()
	api := newRecordingUpstream(t, "api")
	dir := t.TempDir()
	writeFile(t, dir, "www/index.html", "home")
	writeFile(t, dir, "www/404.html", "custom 404")
	const hash = "$2a$04$ojPoDgH44KHkw49aC1sv9OhKp9cH5gxq2gAcsZNpG7QMaZR3jINBq" // "s3cret", cost 4
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf(`root: %s
headers: {X-Frame-Options: DENY}
response-headers: {set: {X-Site: default}}
error-pages: {404: 404.html}
access: {deny: [192.0.2.0/24]}
files: {cache-control: "public, max-age=60"}
redirects:
  - {path: /old, to: /, status: 301}
routes:
  - path: /api/
    proxy: %s
    strip-prefix: true
    add-prefix: /v2
    access: {basic-auth: {ops: "%s"}}
    request-headers: {set: {X-Team: ops}}
sites:
  - hosts: [other.test]
    root: %s
`, filepath.Join(dir, "www"), api.url, hash, filepath.Join(dir, "www")))
	in := serve(t, childEnv(t), "--config", cfg)
	c := dial(t, in.https, insecure)

	resp, body := c.hostGet(t, "localhost", "/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "home", body)
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	assert.Equal(t, "default", resp.Header.Get("X-Site"))
	assert.Equal(t, "public, max-age=60", resp.Header.Get("Cache-Control"))
	resp, body = c.hostGet(t, "localhost", "/missing")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "custom 404", body)
	resp, _ = c.hostGet(t, "localhost", "/old")
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	resp, _ = c.hostGet(t, "localhost", "/api/x")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the route's access")
	_, err := fmt.Fprintf(c, "GET /api/x?q=1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic b3BzOnMzY3JldA==\r\n\r\n")
	require.NoError(t, err)
	resp, body, err = c.readResponse(http.MethodGet)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "from api /v2/x", body, "strip-prefix, then add-prefix")
	if reqs := api.requests(); assert.NotEmpty(t, reqs) {
		assert.Equal(t, "ops", reqs[len(reqs)-1].Header.Get("X-Team"))
		assert.Equal(t, "/v2/x?q=1", reqs[len(reqs)-1].RequestURI)
	}
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), "the default site's headers on its route's answer")
	resp, _ = c.hostGet(t, "other.test", "/")
	assert.Empty(t, resp.Header.Get("X-Frame-Options"), "another site has its own")

	for _, tc := range []struct{ name, yaml, want string }{
		{"headers", "headers: {Bad Name: x}\n", `:1: headers: Bad Name: must be header names (RFC 9110 tokens, such as X-Frame-Options)`},
		{"access", "keepalive-idle: 30s\naccess: {allow: [10.0.0.0/33]}\n", `:2: access: allow: "10.0.0.0/33" is neither an address nor a prefix (10.0.0.0/8)`},
		{"redirect", "redirects:\n  - {path: /x, to: /y, status: 200}\n", ":2: redirects[0].status: 200: must be 301, 302, 303, 307 or 308"},
		{"route key", "routes:\n  - path: /api/\n    proxy: http://127.0.0.1:1\n    strip: true\n", `:4: routes[0]: unknown key "strip"; want a list of routes, each a mapping of ` + routeKeys},
		{"route access", "routes:\n  - path: /api/\n    proxy: http://127.0.0.1:1\n    access: {deny: [x]}\n", `:4: routes[0].access: deny: "x" is neither an address nor a prefix (10.0.0.0/8)`},
		{"files without root", "files: {listing: true}\n", ":1: files: files: options for a site's root; this site serves no files (no root, or a proxy for every path)"},
		{"set twice", "headers: {A: b}\nheaders: {C: d}\n", `:2: "headers" is set twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := writeFile(t, t.TempDir(), "bad.yaml", tc.yaml)
			r := run(t, childEnv(t), "check", "--config", bad)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Equal(t, []string{"fastserve: config file " + bad + tc.want}, r.stderrLines())
		})
	}
}

// TestSitesCompress: compress: at a site and at a route reaches the
// server (the route's wins), check prints it, and a bad value is named
// with its file and line.
func TestSitesCompress(t *testing.T) {
	t.Parallel()
	body := strings.Repeat(`{"name":"item","price":10,"in_stock":true},`, 100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	})}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	url := "http://" + ln.Addr().String()
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf(`sites:
  - hosts: [z.test]
    proxy: %s
    compress: true
    routes:
      - path: /raw/
        proxy: %s
        compress: false
`, url, url))
	r := run(t, childEnv(t), "check", "--config", cfg)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, strings.Split(r.stdout, "\n"), "sites[0]: hosts=z.test proxy="+url+" compress=true route=/raw/->"+url+" (compress=false)  # config file "+cfg+":2")

	in := serve(t, childEnv(t), "--config", cfg)
	c := dial(t, in.https, insecure)
	get := func(path string) (*http.Response, string) {
		_, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: z.test\r\nAccept-Encoding: gzip\r\n\r\n", path)
		require.NoError(t, err)
		resp, b, err := c.readResponse(http.MethodGet)
		require.NoError(t, err)
		return resp, b
	}
	resp, got := get("/data")
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	zr, err := gzip.NewReader(strings.NewReader(got))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, body, string(plain))
	resp, got = get("/raw/data")
	assert.Empty(t, resp.Header.Get("Content-Encoding"), "the route's compress: false")
	assert.Equal(t, body, got)

	site := "sites:\n  - hosts: [x.test]\n"
	for _, tc := range []struct{ yaml, want string }{
		{"    proxy: " + url + "\n    compress: maybe\n", ":4: sites[0].compress: maybe: must be true or false"},
		{"    proxy: " + url + "\n    routes:\n      - {path: /a/, proxy: " + url + ", compress: 1x}\n",
			":5: sites[0].routes[0].compress: 1x: must be true or false"},
		{"    root: " + t.TempDir() + "\n    compress: true\n",
			":4: sites[0].compress: true: must be false for a site with no upstream and no handler"},
	} {
		bad := writeFile(t, t.TempDir(), "bad.yaml", site+tc.yaml)
		r := run(t, childEnv(t), "check", "--config", bad)
		assert.Equal(t, 2, r.code, r.stderr)
		assert.Contains(t, r.stderr, "bad.yaml"+tc.want)
	}
}
