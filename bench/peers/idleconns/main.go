// Command idleconns holds many idle keep-alive TLS 1.3 connections open to
// a server, so that the server's memory per idle connection can be read
// (bench/peers/run.sh reads its RSS before and after).
//
// It opens -n connections (certificates are not verified), sends one GET
// on each and reads the answer, so that the server has allocated whatever
// it keeps per connection, then prints a line starting "ready" and waits,
// holding them all, until SIGINT or SIGTERM or until its standard input is
// closed. With -show it first prints the status line, TLS parameters,
// headers and body of the first answer: idleconns -n 1 -show </dev/null is
// a one-shot probe.
//
// It raises its own RLIMIT_NOFILE to the hard limit and says what applied.
// When -n is more than three quarters of the local port range
// (net.ipv4.ip_local_port_range), it spreads the connections over several
// loopback source addresses (127.0.0.1, 127.0.0.2, ...); this only works
// for a server on a loopback address.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "host:port of the TLS server")
	n := flag.Int("n", 10000, "connections to open and hold")
	path := flag.String("path", "/", "path of the GET sent on each connection")
	parallel := flag.Int("parallel", 64, "connections being set up at once")
	timeout := flag.Duration("timeout", 120*time.Second, "bound on setting up all the connections")
	sources := flag.Int("sources", 0, "loopback source addresses to spread over (0 = as the port range requires)")
	show := flag.Bool("show", false, "print the first answer's status, TLS parameters, headers and body")
	flag.Parse()
	if *n < 1 || *parallel < 1 {
		fail(fmt.Errorf("-n and -parallel must be >= 1, got %d and %d", *n, *parallel))
	}

	fmt.Println(raiseFileLimit())
	if *sources == 0 {
		*sources = sourcesNeeded(*n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	conns, first, err := openAll(ctx, *addr, *path, *n, *parallel, *sources)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if *show && first != nil {
		fmt.Print(first)
	}
	if err != nil {
		fail(err)
	}
	fmt.Printf("ready: %d connections to %s from %d source address(es) in %v\n",
		len(conns), *addr, *sources, time.Since(start).Round(time.Millisecond))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case s := <-sig:
		fmt.Printf("closing %d connections on %v\n", len(conns), s)
	case <-stdinClosed:
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "idleconns:", err)
	os.Exit(1)
}

// sourcesNeeded is how many source addresses n connections need so that
// each uses at most three quarters of the local port range.
func sourcesNeeded(n int) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 1
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 1
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return 1
	}
	per := (hi - lo + 1) * 3 / 4
	if per < 1 {
		return 1
	}
	return (n + per - 1) / per
}

// openAll opens n connections, parallel at a time, and returns the ones it
// holds, with the first answer described when there is one.
func openAll(ctx context.Context, addr, path string, n, parallel, sources int) ([]net.Conn, fmt.Stringer, error) {
	var (
		next   atomic.Int64
		mu     sync.Mutex
		conns  = make([]net.Conn, 0, n)
		errs   = map[string]int{}
		first  *answer
		failed int
		wg     sync.WaitGroup
	)
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: idleconns\r\n\r\n")
	for range min(parallel, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, a, err := open(ctx, addr, source(i, sources), req)
				mu.Lock()
				if err != nil {
					failed++
					errs[err.Error()]++
				} else {
					conns = append(conns, c)
					if first == nil {
						first = a
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var stringer fmt.Stringer
	if first != nil {
		stringer = first
	}
	if len(conns) < n {
		if err := ctx.Err(); err != nil {
			errs["not opened in time: "+err.Error()] += n - len(conns) - failed
		}
		return conns, stringer, fmt.Errorf("%d of %d connections failed: %s", n-len(conns), n, summarize(errs))
	}
	return conns, stringer, nil
}

// source is the local address of the i-th connection.
func source(i, sources int) *net.TCPAddr {
	if sources <= 1 {
		return nil
	}
	k := 1 + i%sources
	return &net.TCPAddr{IP: net.IPv4(127, byte(k>>16), byte(k>>8), byte(k))}
}

func summarize(errs map[string]int) string {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return errs[keys[a]] > errs[keys[b]] })
	var parts []string
	for i, k := range keys {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d other kinds", len(keys)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("%dx %s", errs[k], k))
	}
	return strings.Join(parts, "; ")
}

// answer describes one response, for -show.
type answer struct {
	status  string
	tls     tls.ConnectionState
	header  http.Header
	body    []byte
	bodyLen int64
}

func (a *answer) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "status: %s\n", a.status)
	fmt.Fprintf(&b, "tls: %s %s\n", tls.VersionName(a.tls.Version), tls.CipherSuiteName(a.tls.CipherSuite))
	keys := make([]string, 0, len(a.header))
	for k := range a.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range a.header[k] {
			fmt.Fprintf(&b, "header: %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(&b, "body: %d bytes: %q\n", a.bodyLen, a.body)
	return b.String()
}

// open dials one TLS 1.3 connection, sends req and reads the answer, which
// must be a 200 that keeps the connection open.
func open(ctx context.Context, addr string, src *net.TCPAddr, req []byte) (net.Conn, *answer, error) {
	nd := &net.Dialer{Timeout: 30 * time.Second}
	if src != nil {
		nd.LocalAddr = src // a nil *TCPAddr in the interface is not "none"
	}
	d := tls.Dialer{
		NetDialer: nd,
		Config: &tls.Config{
			InsecureSkipVerify: true, // the benchmark's self-signed certificate
			MinVersion:         tls.VersionTLS13,
			MaxVersion:         tls.VersionTLS13,
		},
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	c := nc.(*tls.Conn)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		err = fmt.Errorf("status %s", resp.Status)
	case resp.Close:
		err = errors.New("the server closed the connection after the answer")
	}
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, &answer{status: resp.Status, tls: c.ConnectionState(), header: resp.Header, body: body, bodyLen: int64(len(body))}, nil
}
