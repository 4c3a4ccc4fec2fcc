package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawGet writes GET path with Host host on c and reads the answer as it
// is on the wire: its head, up to the blank line, and its body.
func (c *rawConn) rawGet(t testing.TB, host, path string) (head, body string) {
	t.Helper()
	_, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fastserve-test\r\n\r\n", path, host)
	require.NoError(t, err)
	var b strings.Builder
	n := 0
	for {
		line, err := c.br.ReadString('\n')
		require.NoError(t, err, "head so far: %q", b.String())
		b.WriteString(line)
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			n, err = strconv.Atoi(strings.TrimSpace(v))
			require.NoError(t, err)
		}
		if line == "\r\n" {
			break
		}
	}
	buf := make([]byte, n)
	_, err = io.ReadFull(c.br, buf)
	require.NoError(t, err)
	return b.String(), string(buf)
}

// metricValue is the value of the /metrics line named name (with its
// labels, exactly), or -1 if there is none.
func metricValue(t testing.TB, in *instance, name string) int {
	t.Helper()
	_, m := adminGet(t, in, "/metrics")
	for _, l := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err, l)
			return n
		}
	}
	return -1
}

// TestRateLimitServe: a route with rate-limit: answers 429 with
// Retry-After past its burst, on the wire, with the site's headers and
// before its upstream is asked; another client (another source address)
// is served meanwhile; the client is served again once Retry-After has
// passed; /metrics counts it all.
func TestRateLimitServe(t *testing.T) {
	t.Parallel()
	api := newRecordingUpstream(t, "api")
	dir := t.TempDir()
	writeFile(t, dir, "www/index.html", "home")
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", fmt.Sprintf(`sites:
  - hosts: [a.test]
    root: %s
    headers: {X-Frame-Options: DENY}
    rate-limit: {rate: 600/m, burst: 100}
    routes:
      - path: /api/
        proxy: %s
        rate-limit: {rate: 2/s, burst: 2}
`, filepath.Join(dir, "www"), api.url))
	in := serve(t, childEnv(t), "--config", cfg, "--proxy-health-interval", "1h")
	c := dialFrom(t, "127.0.0.1", in.https, insecure)

	// 1+burst pass at once; the rest of a quick run of requests is
	// refused. (More pass only if the machine stalls between them.)
	passed, head, body := 0, "", ""
	for range 20 {
		if head, body = c.rawGet(t, "a.test", "/api/x"); strings.HasPrefix(head, "HTTP/1.1 429 ") {
			break
		}
		require.True(t, strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n"), head)
		passed++
	}
	require.True(t, strings.HasPrefix(head, "HTTP/1.1 429 Too Many Requests\r\n"), "no 429 after %d requests:\n%s", passed, head)
	assert.GreaterOrEqual(t, passed, 3, "1+burst requests pass at once")
	m := regexp.MustCompile(`\r\nRetry-After: (\d+)\r\n`).FindStringSubmatch(head)
	require.NotNil(t, m, "Retry-After on the wire:\n%s", head)
	assert.Equal(t, "1", m[1], "at 2/s, the next request is less than a second away: whole seconds, rounded up")
	assert.Contains(t, head, "\r\nX-Frame-Options: DENY\r\n", "the site's headers on the 429")
	assert.Contains(t, head, "\r\nContent-Type: text/plain; charset=utf-8\r\n")
	assert.Equal(t, "Too Many Requests\n", body)
	upstreamSaw := func() int {
		n := 0
		for _, r := range api.requests() {
			if r.URL.Path == "/api/x" {
				n++
			}
		}
		return n
	}
	assert.Equal(t, passed, upstreamSaw(), "the refused request never reached the upstream")

	other := dialFrom(t, "127.0.0.2", in.https, insecure)
	head, _ = other.rawGet(t, "a.test", "/api/x")
	assert.True(t, strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n"), "another client is served: %s", head)

	retry, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	time.Sleep(time.Duration(retry) * time.Second)
	head, body = c.rawGet(t, "a.test", "/api/x")
	assert.True(t, strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n"), "served again after Retry-After: %s", head)
	assert.Equal(t, "from api /api/x", body)
	head, body = c.rawGet(t, "a.test", "/")
	assert.True(t, strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n"), "the site's own limit is far: %s", head)
	assert.Equal(t, "home", body)

	assert.Equal(t, 1, metricValue(t, in, `fastserve_rate_limit_total{site="a.test",route="/api/",result="limited"}`))
	assert.Equal(t, passed+2, metricValue(t, in, `fastserve_rate_limit_total{site="a.test",route="/api/",result="passed"}`))
	assert.Equal(t, passed+4, metricValue(t, in, `fastserve_rate_limit_total{site="a.test",route="",result="passed"}`),
		"the site's limit passed every request, the refused one too")
	assert.Equal(t, 1, metricValue(t, in, `fastserve_site_requests_total{site="a.test",route="/api/",code="4xx"}`))
	assert.Equal(t, 0, metricValue(t, in, `fastserve_rate_limit_evicted_total{site="a.test",route="/api/"}`))
}

// dialProxied opens a TCP connection to addr, sends a PROXY protocol v1
// header naming client as the source, and makes a TLS connection over it.
func dialProxied(t testing.TB, addr, client string) *rawConn {
	t.Helper()
	tc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { tc.Close() })
	require.NoError(t, tc.SetDeadline(time.Now().Add(10*time.Second)))
	_, port, _ := net.SplitHostPort(addr)
	_, err = fmt.Fprintf(tc, "PROXY TCP4 %s 127.0.0.1 40000 %s\r\n", client, port)
	require.NoError(t, err)
	c := tls.Client(tc, insecure)
	require.NoError(t, c.Handshake())
	rc := &rawConn{Conn: c}
	rc.read.r = c
	rc.br = bufio.NewReader(&rc.read)
	return rc
}

// TestRateLimitDefaultSite: --rate-limit limits the default site's
// clients by the address a PROXY protocol header gives, not by the
// balancer's: two clients behind one balancer have a budget each, and a
// client's budget follows it to a new connection.
func TestRateLimitDefaultSite(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t), "--rate-limit", "1/m", "--rate-limit-burst", "1",
		"--proxy-protocol", "--proxy-protocol-from", "127.0.0.1/32")
	get := func(c *rawConn) string {
		head, _ := c.rawGet(t, "localhost", "/")
		return head[:len("HTTP/1.1 200")]
	}
	a := dialProxied(t, in.https, "203.0.113.7")
	assert.Equal(t, "HTTP/1.1 200", get(a))
	assert.Equal(t, "HTTP/1.1 200", get(a))
	assert.Equal(t, "HTTP/1.1 429", get(a), "past 1+burst")
	b := dialProxied(t, in.https, "203.0.113.8")
	assert.Equal(t, "HTTP/1.1 200", get(b), "another client behind the same balancer")
	a2 := dialProxied(t, in.https, "203.0.113.7")
	assert.Equal(t, "HTTP/1.1 429", get(a2), "the same client on a new connection")
	head, _ := a2.rawGet(t, "localhost", "/")
	assert.Contains(t, head, "\r\nRetry-After: ", head)
	assert.Equal(t, 3, metricValue(t, in, `fastserve_rate_limit_total{site="default",route="",result="limited"}`))
	assert.Equal(t, 2, metricValue(t, in, `fastserve_rate_limit_keys{site="default",route=""}`), "two clients owe something")
}

// TestRateLimitCheck: check names each bad rate-limit value by file,
// line and field, with what it takes; it prints a good one.
func TestRateLimitCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := writeFile(t, dir, "fastserve.yaml", `sites:
  - hosts: [a.test]
    proxy: http://127.0.0.1:1
    rate-limit:
      rate: 10/d
      burst: -1
      key: "header:X Y"
    routes:
      - path: /api/
        proxy: http://127.0.0.1:2
        rate-limit: {burst: 3, dry-run: maybe, ipv6-prefix: 200, keys: addr}
`)
	r := run(t, childEnv(t), "check", "--config", bad)
	assert.Equal(t, 2, r.code, r.stderr)
	for _, want := range []string{
		"fastserve: config file " + bad + ":5: sites[0].rate-limit.rate: 10/d: must be N/s, N/m or N/h, N a whole number of 1 or more (10/s, 600/m, 1/h)",
		"fastserve: config file " + bad + ":6: sites[0].rate-limit.burst: -1: must be from 0 to 1000000",
		"fastserve: config file " + bad + ":7: sites[0].rate-limit.key: header:X Y: must be addr (the client's address) or header:NAME (a request header's value, the address without it), such as header:X-Api-Key",
		"fastserve: config file " + bad + ":11: sites[0].routes[0].rate-limit.rate: none: must be N/s, N/m or N/h, N a whole number of 1 or more (10/s, 600/m, 1/h)",
		"fastserve: config file " + bad + ":11: sites[0].routes[0].rate-limit.dry-run: maybe: must be true or false",
		"fastserve: config file " + bad + ":11: sites[0].routes[0].rate-limit.ipv6-prefix: 200: must be from 1 to 128, or 0 for 64",
		"fastserve: config file " + bad + `:11: sites[0].routes[0].rate-limit: unknown key "keys"; want {rate: 10/s, burst: 5, key: addr or "header:X-Api-Key", dry-run: false, max-keys: 65536, ipv6-prefix: 64}`,
	} {
		assert.Contains(t, r.stderrLines(), want)
	}

	r = run(t, childEnv(t), "check", "--rate-limit", "10/x", "--rate-limit-burst", "-2")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderrLines(), "fastserve: --rate-limit=10/x (flag --rate-limit): invalid value: want N/s, N/m or N/h, N a whole number of 1 or more (10/s, 600/m, 1/h)")
	r = run(t, childEnv(t), "check", "--rate-limit-burst", "2")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "--rate-limit-burst=2 (flag --rate-limit-burst): takes effect only with --rate-limit, which is empty")

	good := writeFile(t, dir, "good.yaml", `sites:
  - hosts: [a.test]
    proxy: http://127.0.0.1:1
    rate-limit: {rate: 10/s, burst: 5, key: "header:X-Api-Key"}
    routes:
      - {path: /api/, proxy: http://127.0.0.1:2, rate-limit: {rate: 1/m, dry-run: true}}
`)
	r = run(t, childEnv(t), "check", "--config", good)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, strings.Split(r.stdout, "\n"), "sites[0]: hosts=a.test proxy=http://127.0.0.1:1 route=/api/->http://127.0.0.1:2 (rate-limit=1/m,burst=0,dry-run) rate-limit=10/s,burst=5,key=header:X-Api-Key  # config file "+good+":2")
}
