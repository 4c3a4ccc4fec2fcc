// Command wsload is the WebSocket load client of bench/peers/websocket.sh:
// it opens WebSockets (ws:// or wss://) to a proxy in front of an echo
// server (bench/wsecho) and either holds them idle, so that the proxy's
// memory per idle tunnel can be read, or sends messages on them and waits
// for each echo, for a fixed time, and reports messages per second and
// latency percentiles.
//
// Hold N idle WebSockets (each echoes one message first, so that the proxy
// has allocated what it keeps per tunnel), until SIGINT or SIGTERM or until
// standard input is closed:
//
//	wsload -url wss://127.0.0.1:19500/ -n 10000
//
// It prints a line starting "nofile", then one starting "ready" once
// every WebSocket is set up. wsload -n 1 </dev/null is a one-shot probe.
//
// Echo load: C WebSockets, each sending an S-byte binary message and
// waiting for its echo before the next (a closed loop), for a warm-up of W
// seconds and then D seconds measured:
//
//	wsload -url wss://127.0.0.1:19500/ -c 100 -size 64 -warmup 2s -d 10s [-pids 123,124]
//
// It prints one JSON object: the messages echoed within the measured
// window (sent after it began, echoed before it ended), their rate, their
// latency percentiles in microseconds (p50_us, p90_us, p99_us, p999_us,
// max_us: from the message's write to the end of its echo's read), errors,
// and, with -pids, the CPU time those processes spent in the window
// (utime+stime from /proc/PID/stat, in clock ticks) and their VmRSS at its
// middle: the proxy's, so that the connections' set-up (TLS handshakes)
// and tear-down fall outside its CPU time. Each echo is checked byte for
// byte; a message carries its sequence number, so a lost or reordered echo
// is an error too. An error ends its connection's part of the run.
//
// Certificates are not verified unless -ca names the CA's PEM file; wss://
// is TLS 1.3 only. Each message has a mask key of its own (RFC 6455
// section 5.3). wsload raises its own RLIMIT_NOFILE to the hard limit.
// When the connections are more than three quarters of the local port
// range, it spreads them over loopback source addresses (127.0.0.1,
// 127.0.0.2, ...), which only works for a proxy on a loopback address.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.url, "url", "wss://127.0.0.1:19500/", "WebSocket URL, ws:// or wss://")
	flag.IntVar(&o.idle, "n", 0, "idle mode: WebSockets to open and hold")
	flag.IntVar(&o.conns, "c", 0, "echo load: WebSockets sending messages")
	flag.IntVar(&o.size, "size", 64, "message payload in bytes")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "echo load: the measured window")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "echo load: messages sent before the window, not counted")
	flag.StringVar(&o.pids, "pids", "", "echo load: comma-separated process ids whose CPU time in the window and RSS at its middle are reported (Linux)")
	flag.Int64Var(&o.clockTick, "clk-tck", 100, "clock ticks per second of /proc/PID/stat (getconf CLK_TCK)")
	flag.StringVar(&o.ca, "ca", "", "PEM file of the CA to verify the proxy's certificate against (empty = no verification)")
	flag.IntVar(&o.parallel, "parallel", 64, "WebSockets being set up at once")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on each connection's set-up and first echo, and on the last echo after the window")
	flag.DurationVar(&o.setupTimeout, "setup-timeout", 180*time.Second, "bound on setting up all the WebSockets")
	flag.IntVar(&o.sources, "sources", 0, "loopback source addresses to spread over (0 = as the port range requires)")
	flag.Parse()
	if err := o.check(); err != nil {
		fail(err)
	}
	if o.idle > 0 {
		if err := holdIdle(o); err != nil {
			fail(err)
		}
		return
	}
	res, err := echoLoad(o)
	if res.Conns > 0 {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wsload:", err)
	os.Exit(1)
}

// options are wsload's command line.
type options struct {
	url                   string
	idle, conns, size     int
	duration, warmup      time.Duration
	pids                  string
	clockTick             int64
	ca                    string
	parallel, sources     int
	timeout, setupTimeout time.Duration

	// Derived by check.
	addr, host, path string
	tls              *tls.Config
	pidList          []int
}

func (o *options) check() error {
	switch {
	case (o.idle > 0) == (o.conns > 0):
		return errors.New("give either -n (idle) or -c (echo load), a count >= 1")
	case o.idle < 0 || o.conns < 0:
		return errors.New("-n and -c must not be negative")
	case o.size < 8:
		return fmt.Errorf("-size must be >= 8 (a message carries its 8-byte sequence number), got %d", o.size)
	case o.duration <= 0 || o.warmup < 0:
		return fmt.Errorf("-d must be > 0 and -warmup >= 0, got %v and %v", o.duration, o.warmup)
	case o.parallel < 1 || o.clockTick < 1:
		return fmt.Errorf("-parallel and -clk-tck must be >= 1, got %d and %d", o.parallel, o.clockTick)
	case o.timeout <= 0 || o.setupTimeout <= 0:
		return errors.New("-timeout and -setup-timeout must be > 0")
	}
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("-url must be ws:// or wss:// with a host, got %q", o.url)
	}
	o.host, o.addr, o.path = u.Host, u.Host, u.RequestURI()
	if u.Port() == "" {
		o.addr += map[string]string{"ws": ":80", "wss": ":443"}[u.Scheme]
	}
	if u.Scheme == "wss" {
		o.tls = &tls.Config{
			ServerName: u.Hostname(),
			MinVersion: tls.VersionTLS13,
			MaxVersion: tls.VersionTLS13,
		}
		if o.ca == "" {
			o.tls.InsecureSkipVerify = true // the benchmark's self-signed certificate
		} else {
			pem, err := os.ReadFile(o.ca)
			if err != nil {
				return fmt.Errorf("-ca: %w", err)
			}
			o.tls.RootCAs = x509.NewCertPool()
			if !o.tls.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("-ca: no PEM certificate in %s", o.ca)
			}
		}
	}
	o.pidList = nil
	for p := range strings.SplitSeq(o.pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return fmt.Errorf("-pids must be process ids, got %q", p)
		}
		o.pidList = append(o.pidList, n)
	}
	return nil
}
