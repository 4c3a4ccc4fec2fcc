package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The settings TestSlowHTTPAttacks serves with: short bounds, so that an
// attack's connections must go within seconds.
const (
	slowHeaderTimeout = 2 * time.Second // --header-timeout: slowloris (-H)
	slowBodyTimeout   = 2 * time.Second // --body-timeout: slow body (-B)
	slowWriteTimeout  = 2 * time.Second // --write-timeout: slow read (-X)

	// slowMinRate is --min-rate, in bytes per second. The header and body
	// timeouts grow by 1 s per slowMinRate bytes received; slowhttptest
	// sends far fewer than 4 KiB on a connection in the seconds it lives,
	// so the growth is 0 and the bound is the timeout itself. The bound is
	// still computed from the bytes the kernel says each connection
	// received (TLS records included, so it can only come out larger).
	slowMinRate = 4096

	// slack is what a connection may outlive its bound by: the sampling
	// period, the handshake and scheduling.
	slack = time.Second

	slowSample = 200 * time.Millisecond // how often the connections are sampled

	// Each attack opens slowConns connections, slowRate a second, so it
	// goes on for about slowConns/slowRate seconds plus the bound, and
	// slowhttptest stops it after slowLength seconds at the latest.
	slowConns  = 50
	slowRate   = 5
	slowLength = 13

	bigFileSize = 4 << 20 // the file the slow-read attack asks for
)

// slowAttack is one of slowhttptest's modes and the setting that must
// close its connections.
type slowAttack struct {
	name    string
	args    []string      // slowhttptest's mode and mode options
	path    string        // what the attack asks for
	timeout time.Duration // the server's bound on such a connection
	grows   bool          // whether --min-rate extends the bound
	proxy   bool          // served through --proxy, whose handler reads bodies (files take none)
}

// TestSlowHTTPAttacks runs slowhttptest, the slow-HTTP attack tool, in
// each of its slow modes against fastserve over TLS, and measures how long
// each attacking connection stays open: from the server's side, the
// age_seconds /debug/conns last gives it, and from the kernel's, how long
// ss sees the server's socket ESTABLISHED (a socket is known by its cookie,
// not its address: the attack's short probe connections reuse ports, and
// the two would make one long connection). Each must be within the bound
// the settings give, plus a second, while a client requesting a page every
// 100 ms on a keep-alive connection gets all its answers.
//
// slowhttptest's own verdict ("service available") is logged, not
// checked: it says YES for a server with no timeouts at all, since 50
// connections exhaust nothing.
func TestSlowHTTPAttacks(t *testing.T) {
	tool, err := exec.LookPath("slowhttptest")
	if err != nil {
		t.Skip("slowhttptest is not installed (Debian package slowhttptest): no slow-HTTP attack to run")
	}
	ssBin, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("ss is not installed (Debian package iproute2): the attack's connections cannot be measured from the kernel")
	}
	t.Parallel()

	root := t.TempDir()
	writeFile(t, root, "index.html", "<h1>still here</h1>\n")
	require.NoError(t, os.WriteFile(filepath.Join(root, "big.bin"), bytes.Repeat([]byte("0123456789abcdef"), bigFileSize/16), 0o644))

	attacks := []slowAttack{
		{
			// Slowloris: a request head, then one more header line of up
			// to 24 bytes every second, never the blank line.
			name:    "slowloris",
			args:    []string{"-H", "-i", "1", "-x", "24"},
			path:    "/index.html",
			timeout: slowHeaderTimeout,
			grows:   true,
		},
		{
			// R-U-Dead-Yet: a whole POST head announcing 4096 bytes, then
			// up to 24 bytes of body every second. Static files take no
			// body and answer such a POST at once, so it goes to a
			// reverse proxy, which reads bodies.
			name:    "slowbody",
			args:    []string{"-B", "-i", "1", "-x", "24", "-s", "4096"},
			path:    "/index.html",
			timeout: slowBodyTimeout,
			grows:   true,
			proxy:   true,
		},
		{
			// Slow read: three pipelined GETs of the 4 MiB file (12 MiB,
			// more than the kernel buffers on both sides hold), a receive
			// window of 1 to 512 bytes, and 5 bytes read a second. The
			// server's writes stall, and each may stall --write-timeout.
			// Once the server closes, its socket leaves ESTABLISHED for
			// FIN-WAIT-1, and the kernel still delivers what was queued
			// (over 1 MB) at the attacker's pace: slowhttptest counts the
			// connection open to the end of its run.
			name:    "slowread",
			args:    []string{"-X", "-k", "3", "-n", "1", "-w", "1", "-y", "512", "-z", "5"},
			path:    "/big.bin",
			timeout: slowWriteTimeout,
		},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"serve",
				"--header-timeout", slowHeaderTimeout.String(),
				"--body-timeout", slowBodyTimeout.String(),
				"--write-timeout", slowWriteTimeout.String(),
				"--min-rate", strconv.Itoa(slowMinRate)}
			if a.proxy {
				up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					_, _ = io.WriteString(w, "<h1>still here</h1>\n")
				}))
				t.Cleanup(up.Close)
				args = append(args, "--proxy", up.URL)
			} else {
				args = append(args, "--root", root)
			}
			in := serve(t, childEnv(t), args...)
			runSlowAttack(t, in, tool, ssBin, a)
		})
	}
}

// runSlowAttack runs attack a against in while a steady client and the
// samplers run, then checks what they saw.
func runSlowAttack(t *testing.T, in *instance, tool, ssBin string, a slowAttack) {
	_, port, err := net.SplitHostPort(in.https)
	require.NoError(t, err)

	steady := newSteadyClient(t, "https://"+in.https+"/index.html")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Add(1)
	go func() { defer wg.Done(); steady.run(ctx) }()
	require.True(t, eventually(5*time.Second, func() bool { return steady.successes() > 0 }),
		"the steady client got no answer before the attack: %v", steady.errors())

	samples := newConnSamples()
	wg.Add(1)
	go func() { defer wg.Done(); samples.run(ctx, ssBin, port, in.admin) }()

	// The attack, bounded by its own test length and a margin.
	out := filepath.Join(t.TempDir(), "out")
	args := append([]string{
		"-c", strconv.Itoa(slowConns), "-r", strconv.Itoa(slowRate), "-l", strconv.Itoa(slowLength),
		"-p", "2", "-g", "-o", out, "-u", "https://" + in.https + a.path,
	}, a.args...)
	toolLimit := (slowLength + 15) * time.Second
	actx, cancel := context.WithTimeout(context.Background(), toolLimit)
	defer cancel()
	cmd := exec.CommandContext(actx, tool, args...)
	var toolOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &toolOut, &toolOut
	began := time.Now()
	runErr := cmd.Run()
	took := time.Since(began)
	stop()
	wg.Wait()
	require.NoError(t, actx.Err(), "slowhttptest did not end within %v", toolLimit)
	require.NoError(t, runErr, "slowhttptest %s:\n%s", strings.Join(args, " "), plainText(toolOut.String()))
	samples.mu.Lock()
	defer samples.mu.Unlock()
	require.Empty(t, samples.errs, "sampling the connections")

	t.Logf("slowhttptest %s: %v; %s", strings.Join(args, " "), took.Round(100*time.Millisecond), toolVerdict(t, out+".csv", toolOut.String()))

	// Every connection that is not the steady client's is the attack's
	// (its probe connections included). The bound of each grows by 1 s
	// per slowMinRate bytes it received, if the timeout is one that grows.
	mine := steady.localAddrs()
	bytesIn := map[string]int64{} // by remote address
	for _, so := range samples.sockets {
		bytesIn[so.remote] = max(bytesIn[so.remote], so.bytesIn)
	}
	bound := func(received int64) time.Duration {
		if !a.grows {
			return a.timeout
		}
		return a.timeout + time.Duration(received/slowMinRate)*time.Second
	}
	var (
		sockets, conns      int
		maxSpan, maxAge     time.Duration
		maxQueued           time.Duration
		maxBound            time.Duration
		maxBytesIn          int64
		tooLong             []string
		worstSpan, worstAge string
	)
	for _, so := range samples.sockets {
		if mine[so.remote] {
			continue
		}
		sockets++
		b, span := bound(so.bytesIn), so.last.Sub(so.first)
		maxBound, maxBytesIn = max(maxBound, b), max(maxBytesIn, so.bytesIn)
		if span > maxSpan {
			maxSpan, worstSpan = span, so.remote
		}
		if !so.accepted.IsZero() {
			maxQueued = max(maxQueued, so.accepted.Sub(so.first))
		}
		if span > b+slack {
			tooLong = append(tooLong, fmt.Sprintf("%s (socket %s): ESTABLISHED by ss for %v, from %s (accepted %s) to %s, received %d bytes; bound %v",
				so.remote, so.cookie, span.Round(10*time.Millisecond), so.first.Format("15:04:05.000"), so.accepted.Format("15:04:05.000"),
				so.last.Format("15:04:05.000"), so.bytesIn, b))
		}
	}
	for remote, cs := range samples.conns {
		if mine[remote] {
			continue
		}
		for _, c := range cs {
			conns++
			b := bound(bytesIn[remote]) // the most any socket from there received
			if c.age > maxAge {
				maxAge, worstAge = c.age, remote
			}
			if c.age > b+slack {
				tooLong = append(tooLong, fmt.Sprintf("%s: open by /debug/conns for %v, from %s; bound %v",
					remote, c.age.Round(10*time.Millisecond), c.opened.Format("15:04:05.000"), b))
			}
		}
	}
	slices.Sort(tooLong)
	t.Logf("%d attack sockets, longest ESTABLISHED %v (%s) by ss, longest in the accept queue %v; %d attack connections, longest open %v (%s) by /debug/conns; at most %d bytes received; bound %v + %v slack",
		sockets, maxSpan.Round(10*time.Millisecond), worstSpan, maxQueued.Round(10*time.Millisecond),
		conns, maxAge.Round(10*time.Millisecond), worstAge, maxBytesIn, maxBound, slack)
	t.Logf("steady client: %d answers, slowest %v, %d connections", steady.successes(), steady.slowest().Round(time.Millisecond), len(mine))

	assert.GreaterOrEqual(t, sockets, slowConns, "attack connections seen: slowhttptest's output:\n%s", plainText(toolOut.String()))
	assert.Empty(t, tooLong, "attack connections open longer than their bound + %v", slack)
	assert.Empty(t, steady.errors(), "the steady client's failures during the attack")
	// One answer every 100 ms, for most of the attack.
	assert.GreaterOrEqual(t, steady.successes(), int(took/(200*time.Millisecond)), "the steady client's answers in %v", took)
}

// connSamples is what sampling saw of the connections to one server. A
// remote address may name more than one connection: the client may use a
// port again once a connection on it has closed.
type connSamples struct {
	mu      sync.Mutex
	sockets map[string]*socketSighting   // from ss, by socket cookie
	conns   map[string][]*serverSighting // from /debug/conns, by remote address
	errs    []string
}

// socketSighting is one server-side socket as ss saw it ESTABLISHED.
type socketSighting struct {
	remote, cookie string
	first, last    time.Time
	accepted       time.Time // first seen with a file: out of the accept queue
	bytesIn        int64     // bytes_received, TLS records included
}

// serverSighting is one connection as /debug/conns listed it.
type serverSighting struct {
	opened time.Time     // when the server accepted it, by its age
	age    time.Duration // the largest age_seconds given
}

func newConnSamples() *connSamples {
	return &connSamples{sockets: map[string]*socketSighting{}, conns: map[string][]*serverSighting{}}
}

// run samples every slowSample until ctx ends, and once more after.
func (s *connSamples) run(ctx context.Context, ssBin, port, admin string) {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(slowSample)
	defer tick.Stop()
	for {
		s.sample(ssBin, port, admin, client)
		select {
		case <-ctx.Done():
			s.sample(ssBin, port, admin, client)
			return
		case <-tick.C:
		}
	}
}

var (
	ssInode       = regexp.MustCompile(`\bino:(\d+)`)
	ssCookie      = regexp.MustCompile(`\bsk:([0-9a-f]+)`)
	bytesReceived = regexp.MustCompile(`\bbytes_received:(\d+)`)
)

func (s *connSamples) sample(ssBin, port, admin string, client *http.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// With a state filter, ss prints Recv-Q, Send-Q, local and peer
	// addresses, then (-e) the socket's inode (0 while it waits in the
	// accept queue) and cookie, then (-i) an indented line of TCP details.
	ssOut, ssErr := exec.CommandContext(ctx, ssBin, "-tneiH", "state", "established", "( sport = :"+port+" )").Output()
	ssAt := time.Now()

	var doc struct {
		Conns []struct {
			Remote     string  `json:"remote"`
			AgeSeconds float64 `json:"age_seconds"`
		} `json:"conns"`
	}
	resp, debugErr := client.Get("http://" + admin + "/debug/conns?limit=0")
	if debugErr == nil {
		debugErr = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
	}
	debugAt := time.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	if ssErr != nil {
		s.errs = append(s.errs, fmt.Sprintf("ss: %v", ssErr))
	}
	var cur *socketSighting
	for line := range strings.Lines(string(ssOut)) {
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			if m := bytesReceived.FindStringSubmatch(line); cur != nil && m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				cur.bytesIn = max(cur.bytesIn, n)
			}
			continue
		}
		f, ino, sk := strings.Fields(line), ssInode.FindStringSubmatch(line), ssCookie.FindStringSubmatch(line)
		if len(f) < 4 || ino == nil || sk == nil {
			s.errs = append(s.errs, fmt.Sprintf("ss: unexpected line %q", line))
			cur = nil
			continue
		}
		cur = s.sockets[sk[1]]
		if cur == nil {
			cur = &socketSighting{remote: f[3], cookie: sk[1], first: ssAt}
			s.sockets[sk[1]] = cur
		}
		cur.last = ssAt
		if ino[1] != "0" && cur.accepted.IsZero() {
			cur.accepted = ssAt
		}
	}
	if debugErr != nil {
		s.errs = append(s.errs, fmt.Sprintf("/debug/conns: %v", debugErr))
	}
	for _, c := range doc.Conns {
		age := time.Duration(c.AgeSeconds * float64(time.Second))
		opened := debugAt.Add(-age)
		i := slices.IndexFunc(s.conns[c.Remote], func(seen *serverSighting) bool {
			return seen.opened.Sub(opened).Abs() < 500*time.Millisecond // the same connection
		})
		if i < 0 {
			s.conns[c.Remote] = append(s.conns[c.Remote], &serverSighting{opened: opened, age: age})
			continue
		}
		s.conns[c.Remote][i].age = max(s.conns[c.Remote][i].age, age)
	}
}

// steadyClient is an ordinary client of the server during an attack: one
// GET every 100 ms through a keep-alive connection.
type steadyClient struct {
	url    string
	client *http.Client

	mu    sync.Mutex
	local map[string]bool // its connections' local addresses
	ok    int
	worst time.Duration
	fails []string
}

func newSteadyClient(t testing.TB, url string) *steadyClient {
	t.Helper()
	c := &steadyClient{url: url, local: map[string]bool{}}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:    insecure,
		DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err == nil {
				c.mu.Lock()
				c.local[nc.LocalAddr().String()] = true
				c.mu.Unlock()
			}
			return nc, err
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	c.client = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	return c
}

func (c *steadyClient) run(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		c.get(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *steadyClient) get(ctx context.Context) {
	began := time.Now()
	var resp *http.Response
	var body []byte
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err == nil {
		resp, err = c.client.Do(req)
	}
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if ctx.Err() != nil {
		return // the test is over, not the server
	}
	took := time.Since(began)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil:
		c.fails = append(c.fails, fmt.Sprintf("%s: %v", began.Format("15:04:05.000"), err))
	case resp.StatusCode != http.StatusOK:
		c.fails = append(c.fails, fmt.Sprintf("%s: %s: %q", began.Format("15:04:05.000"), resp.Status, body))
	default:
		c.ok++
		c.worst = max(c.worst, took)
	}
}

func (c *steadyClient) successes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok
}

func (c *steadyClient) slowest() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.worst
}

func (c *steadyClient) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.fails)
}

func (c *steadyClient) localAddrs() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	local := make(map[string]bool, len(c.local))
	for a := range c.local {
		local[a] = true
	}
	return local
}

// toolVerdict sums up slowhttptest's CSV (one row a second: closed,
// pending and connected counts, and "service available", which is the
// connection count when its probe got an answer in time and 0 when not)
// and its exit status line.
func toolVerdict(t testing.TB, csvFile, output string) string {
	t.Helper()
	exit := "no exit status"
	if m := regexp.MustCompile(`Exit status:\s*(.+)`).FindStringSubmatch(plainText(output)); m != nil {
		exit = strings.TrimSpace(m[1])
	}
	f, err := os.Open(csvFile)
	if err != nil {
		return fmt.Sprintf("exit status %q; no CSV: %v", exit, err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		return fmt.Sprintf("exit status %q; unreadable CSV %s: %v", exit, csvFile, err)
	}
	var maxConnected, closed, available int
	for _, row := range rows[1:] {
		if len(row) < 5 {
			continue
		}
		c, _ := strconv.Atoi(row[1])
		conn, _ := strconv.Atoi(row[3])
		avail, _ := strconv.Atoi(row[4])
		closed, maxConnected = c, max(maxConnected, conn)
		if avail > 0 {
			available++
		}
	}
	return fmt.Sprintf("exit status %q; at most %d connected at once, %d closed at the end; service available (its verdict) in %d of %d seconds",
		exit, maxConnected, closed, available, len(rows)-1)
}

// plainText is slowhttptest's terminal output without its colour codes.
func plainText(s string) string {
	return regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]").ReplaceAllString(s, "")
}
