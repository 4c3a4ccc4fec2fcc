package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/internal/selfsigned"
)

// newPair makes a self-signed pair for localhost and 127.0.0.1.
func newPair(t testing.TB) (certPEM, keyPEM []byte, leaf *x509.Certificate) {
	t.Helper()
	certPEM, keyPEM, err := selfsigned.PEM(time.Hour, "localhost", "127.0.0.1")
	require.NoError(t, err)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return certPEM, keyPEM, c.Leaf
}

// replaceFile writes data to path by renaming a new file over it, as a
// certificate renewal tool does.
func replaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func TestSIGHUPReloadsCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	cert1, key1, leaf1 := newPair(t)
	cert2, key2, leaf2 := newPair(t)
	replaceFile(t, certFile, cert1)
	replaceFile(t, keyFile, key1)

	roots := x509.NewCertPool()
	roots.AddCert(leaf1)
	roots.AddCert(leaf2)
	trust := &tls.Config{RootCAs: roots, ServerName: "localhost"}

	in := serve(t, childEnv(t), "serve", "--cert", certFile, "--key", keyFile)
	assert.NotContains(t, in.log(), "SELF-SIGNED", "real certificates: no development warning")
	old := dial(t, in.https, trust)
	assert.Contains(t, old.mustGet(t, "/"), "fastserve is running")
	assert.Equal(t, leaf1.Raw, old.leafDER())

	// A renewal: the new pair replaces the files, then SIGHUP.
	replaceFile(t, certFile, cert2)
	replaceFile(t, keyFile, key2)
	from := in.mark()
	in.signal(syscall.SIGHUP)
	in.waitLog(`level=INFO msg="SIGHUP: reloading the configuration and certificates, reopening the access log"`, from)
	in.waitLog(`level=INFO msg="certificates reloaded" files=1`, from)

	assert.Contains(t, old.mustGet(t, "/after-reload"), "fastserve is running", "the open connection still serves")
	assert.Equal(t, leaf1.Raw, old.leafDER(), "the open connection keeps its certificate")
	fresh := dial(t, in.https, trust)
	assert.Equal(t, leaf2.Raw, fresh.leafDER(), "a new connection gets the new certificate")
	fresh.mustGet(t, "/")

	// A broken renewal: the last good certificate keeps serving.
	replaceFile(t, certFile, []byte("this is not a certificate\n"))
	from = in.mark()
	in.signal(syscall.SIGHUP)
	m := in.waitLog(`level=ERROR msg="certificate reload failed; still serving the previous certificates" err="(.*)"$`, from)
	assert.Equal(t, "server: TLS.Certificates[0]: certificate "+certFile+" with key "+keyFile+": tls: failed to find any PEM data in certificate input", m[1])
	assert.NotRegexp(t, `msg="certificates reloaded"`, strings.Join(strings.Split(in.log(), "\n")[from:], "\n"))

	after := dial(t, in.https, trust)
	assert.Equal(t, leaf2.Raw, after.leafDER(), "a new connection gets the last good certificate")
	after.mustGet(t, "/")
	old.mustGet(t, "/still")
	fresh.mustGet(t, "/still")

	in.signal(syscall.SIGTERM)
	assert.Equal(t, 0, in.wait(exitTimeout))
}

// loadClient makes keep-alive requests on one connection after another
// until stop is closed, and records any request that got part of an
// answer but not a complete 200.
type loadClient struct {
	addr string
	path string
	want string // the body of every 200

	ok       int
	failures []string
}

func (lc *loadClient) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		c, err := dialErr(lc.addr, insecure)
		if err != nil {
			// Before the drain this would be a failure, but a refused
			// or reset connection is how a drained listener answers.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		lc.serve(c, stop)
		c.Close()
	}
}

// serve makes requests on c until the server closes it or stop.
func (lc *loadClient) serve(c *rawConn, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		before := c.read.n
		resp, body, err := c.do(http.MethodGet, lc.path)
		got := c.read.n - before
		switch {
		case err != nil && got == 0:
			return // closed before any byte of an answer: the client retries elsewhere
		case err != nil:
			lc.failures = append(lc.failures, fmt.Sprintf("%s: %d bytes then %v", c.LocalAddr(), got, err))
			return
		case resp.StatusCode != http.StatusOK || body != lc.want:
			lc.failures = append(lc.failures, fmt.Sprintf("%s: %s, body %q", c.LocalAddr(), resp.Status, body))
			return
		}
		lc.ok++
		if resp.Close {
			return
		}
	}
}

func TestSIGTERMDrainsUnderLoad(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	page := strings.Repeat("0123456789abcdef", 2048) // 32 KiB: several TLS records
	writeFile(t, root, "page.txt", page)
	in := serve(t, childEnv(t), "serve", "--root", root, "--drain-timeout", "4s")

	const clients = 50
	stop := make(chan struct{})
	lcs := make([]*loadClient, clients)
	var wg sync.WaitGroup
	for i := range lcs {
		lcs[i] = &loadClient{addr: in.https, path: "/page.txt", want: page}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lcs[i].run(stop)
		}()
	}
	stopped := false
	stopClients := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(stopClients)

	time.Sleep(300 * time.Millisecond)
	sent := time.Now()
	in.signal(syscall.SIGTERM)

	// /readyz says so while the drain runs, if the drain lasts long
	// enough to be seen; TestDrainWaitsForInFlightRequest sees it for sure.
	sawDraining := false
	admin := httpsClient(t, nil)
	for time.Since(sent) < time.Second && !sawDraining {
		resp, err := admin.Get("http://" + in.admin + "/readyz")
		if err != nil {
			break // the admin listener closes last, when the drain is over
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			assert.Equal(t, "draining\n", string(b))
			sawDraining = true
		}
	}

	code := in.wait(exitTimeout)
	elapsed := time.Since(sent)
	stopClients()
	assert.Equal(t, 0, code, "exit code after SIGTERM")
	assert.Less(t, elapsed, exitTimeout)
	t.Logf("exited %v after SIGTERM; /readyz seen draining: %v", elapsed.Round(time.Millisecond), sawDraining)

	total := 0
	for _, lc := range lcs {
		total += lc.ok
		assert.Empty(t, lc.failures, "requests that got part of an answer")
	}
	assert.Greater(t, total, clients, "requests answered in all")
	t.Logf("%d requests answered by %d clients", total, clients)
	log := in.log()
	assert.Regexp(t, `level=INFO msg=draining open=\d+`, log)
	assert.Regexp(t, `level=INFO msg=stopped uptime=\S+ err=<nil>`, log)
	assert.NotContains(t, log, "level=ERROR")
}

// TestDrainWaitsForInFlightRequest: a request half sent when SIGTERM
// comes is still answered, in full, while /readyz answers 503 and the
// listener takes no new connections.
func TestDrainWaitsForInFlightRequest(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t), "serve", "--drain-timeout", "8s")
	c := dial(t, in.https, insecure)
	_, err := io.WriteString(c, "GET /in-flight HTTP/1.1\r\nHost: localhost\r\n")
	require.NoError(t, err)
	// The server has the first bytes of the request once the connection
	// shows in /debug/conns with its handshake done.
	require.True(t, eventually(2*time.Second, func() bool {
		return debugConn(t, in, c.LocalAddr()).TLSVersion != ""
	}))
	time.Sleep(100 * time.Millisecond)

	in.signal(syscall.SIGTERM)
	in.waitLog(`level=INFO msg=draining open=1`, 0)
	var status int
	var body string
	require.True(t, eventually(3*time.Second, func() bool {
		resp, b := adminGet(t, in, "/readyz")
		status, body = resp.StatusCode, b
		return status == http.StatusServiceUnavailable
	}), "/readyz answered %d %q during the drain", status, body)
	assert.Equal(t, "draining\n", body)

	_, err = net.DialTimeout("tcp", in.https, time.Second)
	var errno syscall.Errno
	if assert.Error(t, err, "the HTTPS listener is closed during the drain") {
		assert.True(t, errors.As(err, &errno) && errno == syscall.ECONNREFUSED, "dial: %v", err)
	}
	select {
	case <-in.done:
		require.FailNow(t, "fastserve exited with a request in flight", in.log())
	default:
	}

	_, err = io.WriteString(c, "\r\n")
	require.NoError(t, err)
	resp, got, err := c.readResponse(http.MethodGet)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, got, "fastserve is running")
	assert.True(t, resp.Close, "the last answer of a draining server closes the connection")

	assert.Equal(t, 0, in.wait(exitTimeout))
}

// TestSecondSignal: a second SIGINT during a drain closes the idle
// connections the drain was waiting for, at once.
func TestSecondSignal(t *testing.T) {
	t.Parallel()
	in := started(start(t, childEnv(t), "serve", "--addr", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--drain-idle-timeout", "1m"))
	c := dial(t, in.https, insecure)
	c.mustGet(t, "/")
	in.signal(syscall.SIGINT)
	in.waitLog(`msg=draining`, 0)
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, in.cmd.Process.Signal(syscall.Signal(0)), "still draining, waiting on the idle connection")
	t0 := time.Now()
	in.signal(syscall.SIGINT)
	assert.Equal(t, 0, in.wait(exitTimeout))
	t.Logf("exited %v after the second signal", time.Since(t0))
	assert.Contains(t, in.log(), "second signal: closing every connection now")
	// The cut reports how long the drain ran, not the second Shutdown's own
	// moment (before: after=0s).
	m := in.waitLog(`msg="drain out of time: connections cut" cut=1 after=(\S+)`, 0)
	after, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	assert.GreaterOrEqual(t, after, 200*time.Millisecond, "the drain ran at least the pause before the second signal")
}

// silentUpstream accepts connections on 127.0.0.1:0 and reads from them,
// never answering; got receives each request's first bytes. Its
// connections close at the end of the test.
func silentUpstream(t testing.TB) (url string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ch := make(chan string, 16)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				b := make([]byte, 4096)
				for {
					n, err := c.Read(b)
					if n > 0 {
						select {
						case ch <- string(b[:n]):
						default:
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String(), ch
}

// TestSecondSignalWithProxiedRequest: a second SIGTERM exits at once even
// while a proxied request waits for an upstream that never answers (the
// drain, and --proxy-timeout, would wait a minute).
func TestSecondSignalWithProxiedRequest(t *testing.T) {
	t.Parallel()
	upstream, got := silentUpstream(t)
	in := serve(t, childEnv(t), "--proxy", upstream, "--proxy-health-interval", "1h", "--drain-timeout", "1m")
	c := dial(t, in.https, insecure)
	_, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	select {
	case req := <-got:
		require.Contains(t, req, "GET /slow HTTP/1.1")
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the request did not reach the upstream", in.log())
	}

	from := in.mark()
	in.signal(syscall.SIGTERM)
	in.waitLog(`msg=draining`, from)
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, in.cmd.Process.Signal(syscall.Signal(0)), "still draining, waiting on the proxied request")
	t0 := time.Now()
	in.signal(syscall.SIGTERM)
	assert.Equal(t, 0, in.wait(2*time.Second), "exit code")
	t.Logf("exited %v after the second signal", time.Since(t0).Round(time.Millisecond))
	assert.Contains(t, in.log(), "second signal: closing every connection now")
}

func TestSIGINT(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t))
	c := dial(t, in.https, insecure)
	c.mustGet(t, "/")
	in.signal(syscall.SIGINT)
	assert.Equal(t, 0, in.wait(exitTimeout))
	assert.Regexp(t, `level=INFO msg=stopped uptime=\S+ err=<nil>`, in.log())
}

// combinedLine is a line of the combined log format with the duration
// appended; the referer is left to TestAccessLogNoReferer.
var combinedLine = regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET (\S+) HTTP/1\.1" 200 (\d+) "([^"]*)" "fastserve-test" \d+\.\d{3}$`)

// logLines waits up to 2 s for path to hold n lines, and returns them.
func logLines(t testing.TB, path string, n int) []string {
	t.Helper()
	var lines []string
	eventually(2*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(b) == 0 {
			lines = nil
		}
		return len(lines) >= n
	})
	require.Len(t, lines, n, "lines in %s", path)
	return lines
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	t.Run("combined, reopened on SIGHUP", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "access.log")
		in := serve(t, childEnv(t), "serve", "--access-log", file)
		c := dial(t, in.https, insecure)
		body := c.mustGet(t, "/one")
		c.mustGet(t, "/two?x=1")

		start := time.Now()
		lines := logLines(t, file, 2)
		assert.Less(t, time.Since(start), 1500*time.Millisecond)
		for i, uri := range []string{"/one", "/two?x=1"} {
			m := combinedLine.FindStringSubmatch(lines[i])
			if assert.NotNil(t, m, "combined format: %q", lines[i]) {
				assert.Equal(t, uri, m[1])
				assert.Equal(t, fmt.Sprint(len(body)), m[2])
			}
		}

		// logrotate: move the file away, then SIGHUP.
		require.NoError(t, os.Rename(file, file+".1"))
		from := in.mark()
		in.signal(syscall.SIGHUP)
		in.waitLog(`msg="SIGHUP: reloading the configuration and certificates, reopening the access log"`, from)
		require.True(t, eventually(2*time.Second, func() bool {
			_, err := os.Stat(file)
			return err == nil
		}), "a fresh %s after SIGHUP", file)
		c.mustGet(t, "/three")
		lines = logLines(t, file, 1)
		m := combinedLine.FindStringSubmatch(lines[0])
		if assert.NotNil(t, m, "combined format: %q", lines[0]) {
			assert.Equal(t, "/three", m[1])
		}
		assert.Len(t, logLines(t, file+".1", 2), 2, "the rotated file keeps its lines")
		assert.NotContains(t, in.log(), "access log not reopened")
	})

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "access.json")
		in := serve(t, childEnv(t), "--access-log", file, "--access-log-format", "json")
		c := dial(t, in.https, insecure)
		body := c.mustGet(t, "/a")
		c.mustGet(t, "/b")
		for i, line := range logLines(t, file, 2) {
			var e struct {
				Time      time.Time `json:"time"`
				Remote    string    `json:"remote"`
				Method    string    `json:"method"`
				URI       string    `json:"uri"`
				Proto     string    `json:"proto"`
				Status    int       `json:"status"`
				Bytes     int       `json:"bytes"`
				Duration  *float64  `json:"duration_s"`
				UserAgent string    `json:"user_agent"`
			}
			require.NoError(t, json.Unmarshal([]byte(line), &e), line)
			assert.Equal(t, []string{"/a", "/b"}[i], e.URI)
			assert.Equal(t, "127.0.0.1", e.Remote)
			assert.Equal(t, "GET", e.Method)
			assert.Equal(t, "HTTP/1.1", e.Proto)
			assert.Equal(t, 200, e.Status)
			assert.Equal(t, len(body), e.Bytes)
			assert.NotNil(t, e.Duration)
			assert.Equal(t, "fastserve-test", e.UserAgent)
			assert.WithinDuration(t, time.Now(), e.Time, time.Minute)
		}
	})
}

// TestAccessLogNoReferer: in the combined format (Apache's %{Referer}i,
// nginx's $http_referer) a request without the header logs "-", as log
// analysers expect; a Referer that is sent is logged as sent.
func TestAccessLogNoReferer(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "access.log")
	in := serve(t, childEnv(t), "--access-log", file)
	c := dial(t, in.https, insecure)
	c.mustGet(t, "/no-referer")
	_, err := io.WriteString(c, "GET /with-referer HTTP/1.1\r\nHost: localhost\r\nReferer: https://example.com/x\r\nUser-Agent: fastserve-test\r\n\r\n")
	require.NoError(t, err)
	resp, _, err := c.readResponse(http.MethodGet)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	lines := logLines(t, file, 2)
	var referers []string
	for _, l := range lines {
		m := combinedLine.FindStringSubmatch(l)
		require.NotNil(t, m, "combined format: %q", l)
		referers = append(referers, m[3])
	}
	assert.Equal(t, []string{"-", "https://example.com/x"}, referers, "referers logged for /no-referer and /with-referer")
}

// TestDrainOutOfTimeExitsZero: a drain that reaches --drain-timeout cuts
// what is still open, says how many it cut, and exits 0 like any drain:
// under systemd's Restart=on-failure an exit 1 would restart the old
// instance (before: exit 1, "context deadline exceeded").
func TestDrainOutOfTimeExitsZero(t *testing.T) {
	t.Parallel()
	in := started(start(t, childEnv(t), "serve", "--addr", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--drain-timeout", "1s", "--drain-idle-timeout", "1m"))
	c := dial(t, in.https, insecure)
	c.mustGet(t, "/") // then idle: the drain waits for its next request
	in.signal(syscall.SIGTERM)
	in.waitLog(`msg=draining`, 0)
	assert.Equal(t, 0, in.wait(exitTimeout))
	in.waitLog(`msg="drain out of time: connections cut" cut=1 after=1`, 0)
	in.waitLog(`msg=drained took=1`, 0)
}
