package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// haproxyReady bounds the wait for HAProxy's frontend to accept.
const haproxyReady = 5 * time.Second

// TestHAProxy serves through Debian's HAProxy in TCP mode, which sends a
// PROXY protocol header on each connection to fastserve: v2 with
// send-proxy-v2, v1 with send-proxy. A client bound to 127.0.0.9 connects
// to HAProxy with TLS; fastserve, trusting 127.0.0.1/32 (HAProxy's
// address) to send headers, must log 127.0.0.9 in its access log and show
// it in /debug/conns, with HAProxy's socket as the peer. A direct
// connection from 127.0.0.1 without a header is refused: that address
// must send one.
func TestHAProxy(t *testing.T) {
	haproxy := haproxyBin(t)
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, trust := certFiles(t, dir)
	accessLog := filepath.Join(dir, "access.log")

	in := serve(t, childEnv(t), "serve", "--cert", certFile, "--key", keyFile, "--access-log", accessLog,
		"--proxy-protocol", "--proxy-protocol-from", "127.0.0.1/32")

	for _, tc := range []struct{ name, send string }{
		{"v2", "send-proxy-v2"},
		{"v1", "send-proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front := startHAProxy(t, haproxy, in.https, tc.send)
			c := dialFrom(t, "127.0.0.9", front, trust)
			path := "/via-haproxy-" + tc.name
			assert.Contains(t, c.mustGet(t, path), "fastserve is running")

			ci := debugConn(t, in, c.LocalAddr()) // by remote: the client's address and port
			assert.Regexp(t, `^127\.0\.0\.1:\d+$`, ci.Peer, "the peer is HAProxy's socket")
			assert.NotNil(t, ci.Socket, "the socket under the PROXY header is inspected: %s", ci.SocketError)

			line := waitAccessLog(t, accessLog, regexp.MustCompile(`^\S+ - - \[[^]]+\] "GET `+path+` HTTP/1\.1" 200 `))
			assert.True(t, strings.HasPrefix(line, "127.0.0.9 - - ["), "access log line %q is the client's, not HAProxy's", line)
		})
	}

	t.Run("direct from the balancer's address", func(t *testing.T) {
		_, err := dialFromErr("127.0.0.1", in.https, trust)
		assert.Error(t, err, "127.0.0.1 must send a PROXY header")
		_, metrics := adminGet(t, in, "/metrics")
		assert.Contains(t, strings.Split(metrics, "\n"), `fastserve_rejected_total{limit="proxy_header_missing"} 1`)
	})
	t.Run("direct from another address", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.9", in.https, trust)
		assert.Contains(t, c.mustGet(t, "/direct"), "fastserve is running", "served as a direct client")
		debugConn(t, in, c.LocalAddr())
	})
}

// startHAProxy runs HAProxy in the foreground in TCP mode, with a frontend
// on a free port of 127.0.0.1 and fastserve at backend as its one server,
// with the PROXY protocol option send. It returns the frontend's address
// once it accepts, and kills HAProxy at cleanup.
func startHAProxy(t testing.TB, bin, backend, send string) string {
	t.Helper()
	front := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := writeFile(t, t.TempDir(), "haproxy.cfg", fmt.Sprintf(`global
	maxconn 100

defaults
	mode tcp
	timeout connect 5s
	timeout client 30s
	timeout server 30s

frontend fe
	bind %s
	default_backend fs

backend fs
	server fs %s %s
`, front, backend, send))
	cmd := exec.Command(bin, "-db", "-f", cfg)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start(), "start %s -db -f %s", bin, cfg)
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(exitTimeout):
			t.Errorf("haproxy (pid %d) still running %v after SIGKILL", cmd.Process.Pid, exitTimeout)
		}
	})
	ready := eventually(haproxyReady, func() bool {
		select {
		case <-exited:
			return true // reported below
		default:
		}
		c, err := net.DialTimeout("tcp", front, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	select {
	case <-exited:
		require.FailNowf(t, "haproxy exited", "%s -db -f %s:\n%s", bin, cfg, out.String())
	default:
	}
	require.True(t, ready, "haproxy not accepting on %s within %v:\n%s", front, haproxyReady, out.String())
	return front
}

// dialFrom opens a TLS connection to addr from the local address ip and
// completes the handshake; the connection is closed at cleanup.
func dialFrom(t testing.TB, ip, addr string, cfg *tls.Config) *rawConn {
	t.Helper()
	c, err := dialFromErr(ip, addr, cfg)
	require.NoError(t, err, "TLS dial %s from %s", addr, ip)
	t.Cleanup(func() { c.Close() })
	return c
}

func dialFromErr(ip, addr string, cfg *tls.Config) (*rawConn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tc, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	if err := tc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		tc.Close()
		return nil, err
	}
	c := &rawConn{Conn: tc}
	c.read.r = tc
	c.br = bufio.NewReader(&c.read)
	return c, nil
}

// waitAccessLog waits up to logTimeout for a line of the access log file
// that matches re, and returns it.
func waitAccessLog(t testing.TB, file string, re *regexp.Regexp) string {
	t.Helper()
	var found string
	ok := eventually(logTimeout, func() bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		for _, l := range strings.Split(string(b), "\n") {
			if re.MatchString(l) {
				found = l
				return true
			}
		}
		return false
	})
	if !ok {
		b, _ := os.ReadFile(file)
		require.FailNowf(t, "access log line not seen", "want /%s/ in %s within %v:\n%s", re, file, logTimeout, b)
	}
	return found
}

// lockedBuffer collects a child process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestHAProxyToUpstream is the whole scale-out path: a client on
// 127.0.0.9, HAProxy in TCP mode sending PROXY v2, fastserve ending TLS
// and proxying to an application, which sees the client's address in
// X-Forwarded-For and Forwarded.
func TestHAProxyToUpstream(t *testing.T) {
	haproxy := haproxyBin(t)
	t.Parallel()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "xff=%s proto=%s forwarded=%s peer=%s\n",
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("Forwarded"), r.RemoteAddr)
	}))
	defer app.Close()

	certFile, keyFile, trust := certFiles(t, t.TempDir())
	in := serve(t, childEnv(t), "serve", "--cert", certFile, "--key", keyFile, "--proxy", app.URL,
		"--proxy-protocol", "--proxy-protocol-from", "127.0.0.1/32")
	front := startHAProxy(t, haproxy, in.https, "send-proxy-v2")
	c := dialFrom(t, "127.0.0.9", front, trust)
	body := c.mustGet(t, "/app")
	t.Logf("the application saw: %s", body)
	assert.Contains(t, body, "xff=127.0.0.9 ", "the client's address, from HAProxy's PROXY header, reaches the application")
	assert.Contains(t, body, "proto=https ")
	assert.Contains(t, body, `forwarded=for=127.0.0.9;`)
	assert.Regexp(t, `peer=127\.0\.0\.1:\d+`, body, "the application's peer is fastserve")
}

// haproxyBin finds Debian's haproxy, or skips the test.
func haproxyBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		// Debian installs it in /usr/sbin, on root's PATH only.
		if bin, err = exec.LookPath("/usr/sbin/haproxy"); err != nil {
			t.Skip("haproxy is not on PATH nor in /usr/sbin (Debian package haproxy; .ci/run installs it as root): no real load balancer to test the PROXY protocol with")
		}
	}
	return bin
}

// certFiles writes a certificate for localhost and its key into dir, and
// returns them with a client configuration that trusts only it.
func certFiles(t *testing.T, dir string) (certFile, keyFile string, trust *tls.Config) {
	t.Helper()
	certPEM, keyPEM, leaf := newPair(t)
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	replaceFile(t, certFile, certPEM)
	replaceFile(t, keyFile, keyPEM)
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return certFile, keyFile, &tls.Config{RootCAs: roots, ServerName: "localhost"}
}
