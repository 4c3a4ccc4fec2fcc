package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The tests in this package build the command once and drive it as an
// operator does: arguments, environment, signals, log lines on stderr,
// and real HTTPS and HTTP clients.

// binary is the fastserve command built by TestMain.
var binary string

const (
	buildTimeout = 5 * time.Minute
	logTimeout   = 10 * time.Second // for a log line to appear
	runTimeout   = 10 * time.Second // for a command that should exit by itself
	exitTimeout  = 5 * time.Second  // for a drain to finish after a signal
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fastserve-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot make a directory for the fastserve binary:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "fastserve")
	if err := build(binary); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build fastserve:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build runs 'go build -o out .' in this package's directory, with the go
// on PATH or else /usr/local/go/bin/go.
func build(out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
		if _, serr := os.Stat(goBin); serr != nil {
			return fmt.Errorf("no go command: not on PATH (%v) nor at %s", err, goBin)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s build -o %s .: %w\n%s", goBin, out, err, b)
	}
	return nil
}

// childEnv is this process's environment without FASTSERVE_* variables,
// with XDG_CACHE_HOME in a fresh temporary directory (where the static
// handler keeps compressed files), and with extra (NAME=value) added.
func childEnv(t testing.TB, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FASTSERVE_") || strings.HasPrefix(kv, "XDG_CACHE_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "XDG_CACHE_HOME="+t.TempDir())
	return append(env, extra...)
}

// result is what a command that ran to its end left.
type result struct {
	stdout, stderr string
	code           int
}

// stderrLines are the lines the command wrote to stderr.
func (r result) stderrLines() []string {
	return strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
}

// run runs the command to its end (bounded by runTimeout) and returns its
// output and exit code.
func run(t testing.TB, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "fastserve %s did not exit within %v; stderr:\n%s", strings.Join(args, " "), runTimeout, stderr.String())
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		require.NoError(t, err, "fastserve %s", strings.Join(args, " "))
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// proc is a running fastserve whose stderr lines are collected as they
// come. It is killed at the end of the test if it is still running.
type proc struct {
	t   testing.TB
	cmd *exec.Cmd

	mu    sync.Mutex
	lines []string
	grew  chan struct{} // closed and replaced when a line arrives

	done  chan struct{} // closed once the process has exited
	state *os.ProcessState
}

// start starts fastserve with args and env.
func start(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(binary, args...), env)
}

// startCmd is start for a command that runs fastserve itself (such as
// "ip netns exec NS fastserve ...", which execs it).
func startCmd(t testing.TB, cmd *exec.Cmd, env []string) *proc {
	t.Helper()
	args := cmd.Args[1:]
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start fastserve %s", strings.Join(args, " "))
	p := &proc{t: t, cmd: cmd, grew: make(chan struct{}), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.grew)
			p.grew = make(chan struct{})
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		p.mu.Lock()
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(exitTimeout):
			t.Errorf("fastserve (pid %d) still running %v after SIGKILL", cmd.Process.Pid, exitTimeout)
		}
	})
	return p
}

// mark is the number of lines logged so far, for waitLog's from.
func (p *proc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// log is everything the process wrote to stderr so far.
func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitLog waits up to logTimeout for a stderr line, from the from'th on,
// that matches pattern, and returns the line's submatches.
func (p *proc) waitLog(pattern string, from int) []string {
	p.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.NewTimer(logTimeout)
	defer deadline.Stop()
	for i := from; ; {
		p.mu.Lock()
		lines, grew := p.lines, p.grew
		p.mu.Unlock()
		for ; i < len(lines); i++ {
			if m := re.FindStringSubmatch(lines[i]); m != nil {
				return m
			}
		}
		select {
		case <-grew:
		case <-p.done:
			p.mu.Lock()
			more := len(p.lines) > i
			p.mu.Unlock()
			if !more {
				require.FailNowf(p.t, "fastserve exited before logging the line", "want /%s/, exit %v; stderr:\n%s", pattern, p.state, p.log())
			}
		case <-deadline.C:
			require.FailNowf(p.t, "log line not seen", "want /%s/ within %v; stderr:\n%s", pattern, logTimeout, p.log())
		}
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		require.FailNowf(p.t, "fastserve did not exit", "still running after %v; stderr:\n%s", d, p.log())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.ExitCode()
}

// instance is a serving fastserve and the addresses it logged.
type instance struct {
	*proc
	https    string // host:port of the first HTTPS listener
	admin    string // host:port of the admin listener
	redirect string // host:port of the redirect listener, if any
}

// serve starts fastserve (args include the command, if any) on
// 127.0.0.1:0 with the admin listener on 127.0.0.1:0, and waits until it
// logs that it serves.
func serve(t testing.TB, env []string, args ...string) *instance {
	t.Helper()
	// Idle keep-alive connections of the test's clients get 200 ms, not
	// 5 s, to bring a last request once a drain begins.
	args = append(args, "--addr", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--drain-idle-timeout", "200ms")
	return started(start(t, env, args...))
}

// started waits for p to log its listeners.
func started(p *proc) *instance {
	p.t.Helper()
	m := p.waitLog(`msg="serving HTTPS" addrs="\[(\S+?:\d+)[ \]]`, 0)
	in := &instance{proc: p, https: m[1]}
	in.admin = p.waitLog(`msg="serving admin" addr=(\S+)`, 0)[1]
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if m := regexp.MustCompile(`msg="serving redirect" addr=(\S+)`).FindStringSubmatch(l); m != nil {
			in.redirect = m[1]
		}
	}
	return in
}

// insecure trusts any certificate: only for the in-memory self-signed
// default, whose key nobody outside the process has.
var insecure = &tls.Config{InsecureSkipVerify: true}

// httpsClient is a client that keeps no connections between tests and
// takes bodies as sent (no transparent gzip).
func httpsClient(t testing.TB, cfg *tls.Config) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: cfg, DisableCompression: true, ForceAttemptHTTP2: false}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get does a GET and returns the response with its whole body.
func get(t testing.TB, c *http.Client, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err, "GET %s", url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "GET %s: body", url)
	return resp, string(b)
}

// adminGet does a GET on the admin listener.
func adminGet(t testing.TB, in *instance, path string) (*http.Response, string) {
	t.Helper()
	return get(t, httpsClient(t, nil), "http://"+in.admin+path)
}

// rawConn is one client TLS connection that requests are written to by
// hand, so that a test controls the exact request bytes, holds the
// connection open, and counts the bytes of each answer.
type rawConn struct {
	*tls.Conn
	read countingReader
	br   *bufio.Reader
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// dial opens a TLS connection to addr and completes the handshake.
func dial(t testing.TB, addr string, cfg *tls.Config) *rawConn {
	t.Helper()
	c, err := dialErr(addr, cfg)
	require.NoError(t, err, "TLS dial %s", addr)
	t.Cleanup(func() { c.Close() })
	return c
}

func dialErr(addr string, cfg *tls.Config) (*rawConn, error) {
	return dialFromErr("", addr, cfg) // any source address
}

// do writes the raw request line and headers for path (GET, Host
// localhost, keep-alive) and reads the response and its body.
func (c *rawConn) do(method, path string) (*http.Response, string, error) {
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: fastserve-test\r\n\r\n", method, path); err != nil {
		return nil, "", err
	}
	return c.readResponse(method)
}

func (c *rawConn) readResponse(method string) (*http.Response, string, error) {
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// mustGet is do("GET", path) that must succeed with 200.
func (c *rawConn) mustGet(t testing.TB, path string) string {
	t.Helper()
	resp, body, err := c.do(http.MethodGet, path)
	require.NoError(t, err, "GET %s on %s", path, c.LocalAddr())
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, body)
	return body
}

// leafDER is the certificate the server presented on the connection.
func (c *rawConn) leafDER() []byte {
	return c.ConnectionState().PeerCertificates[0].Raw
}

// connInfo is an entry of /debug/conns, as an operator reads it.
type connInfo struct {
	Remote     string `json:"remote"`
	Peer       string `json:"peer"`
	Requests   uint64 `json:"requests"`
	Upgraded   bool   `json:"upgraded"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
	TLSVersion string `json:"tls_version"`
	Socket     *struct {
		State             string  `json:"state"`
		KeepAlive         bool    `json:"keepalive"`
		KeepAliveIdle     float64 `json:"keepalive_idle_seconds"`
		KeepAliveInterval float64 `json:"keepalive_interval_seconds"`
		KeepAliveCount    int     `json:"keepalive_count"`
		UserTimeout       float64 `json:"user_timeout_seconds"`
		DeadPeerAfter     float64 `json:"dead_peer_after_seconds"`
	} `json:"socket"`
	SocketError string `json:"socket_error"`
}

// debugConn returns the /debug/conns entry of the client connection whose
// local address is client.
func debugConn(t testing.TB, in *instance, client net.Addr) connInfo {
	t.Helper()
	resp, body := adminGet(t, in, "/debug/conns")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var doc struct {
		Open  int64      `json:"open"`
		Conns []connInfo `json:"conns"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc), body)
	for _, ci := range doc.Conns {
		if ci.Remote == client.String() {
			return ci
		}
	}
	require.FailNowf(t, "client connection not in /debug/conns", "want remote %s in:\n%s", client, body)
	return connInfo{}
}

// freePort returns a port on 127.0.0.1 that nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// eventually polls cond every 20 ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
