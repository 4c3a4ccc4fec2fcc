package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fastserve/fastserve/bench"
)

func newBench(stdout io.Writer) *cobra.Command {
	var (
		cfg         bench.Config
		headers     []string
		body        string
		insecure    bool
		sni         string
		resume      bool
		jsonOut     bool
		vs          string
		rounds      int
		allowErrors bool
	)
	cmd := &cobra.Command{
		Use:   "bench URL",
		Short: "Load a server through long-lived keep-alive connections, as wrk does",
		Long: "Load a server through long-lived keep-alive connections and report requests per second\n" +
			"and latency percentiles (HDR histogram). With --rate the load is open-loop: each latency counts\n" +
			"from the request's intended send time, so a server that stalls shows in the tail (as wrk2).\n" +
			"With --vs URL2 it alternates short runs against the two servers and reports medians,\n" +
			"spreads and the ratio of the first to the second.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.URL = args[0]
			cfg.Header = http.Header{}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok || strings.TrimSpace(k) == "" {
					return usageError{fmt.Errorf("--header=%q: invalid value: want \"Name: value\"", h)}
				}
				cfg.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			cfg.Body = []byte(body)
			cfg.TLS = &tls.Config{InsecureSkipVerify: insecure, ServerName: sni, NextProtos: []string{"http/1.1"}}
			cfg.DisableResumption = !resume
			if cfg.Duration == 0 && cfg.Requests == 0 {
				cfg.Duration = 10 * time.Second
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if vs != "" {
				return runCompare(ctx, stdout, cfg, vs, rounds, jsonOut, allowErrors)
			}
			if isTerminal(os.Stdout) && !jsonOut {
				cfg.Progress = func(p bench.Progress) {
					fmt.Fprintf(stdout, "\r%6.1fs  %10d requests  %9.0f req/s  %d errors ",
						p.Elapsed.Seconds(), p.Requests, float64(p.Requests)/p.Elapsed.Seconds(), p.Errors)
				}
			}
			r, err := bench.Run(ctx, cfg)
			if err != nil {
				return usageError{err}
			}
			if cfg.Progress != nil {
				fmt.Fprint(stdout, "\r\033[K")
			}
			if jsonOut {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				report(stdout, cfg, r)
			}
			return failed(r.Errors, allowErrors)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&cfg.Conns, "connections", "c", 16, "connections held open")
	f.DurationVarP(&cfg.Duration, "duration", "d", 0, "how long to run (10s if neither -d nor -n is given); per run with --vs")
	f.Int64VarP(&cfg.Requests, "requests", "n", 0, "how many requests to send (0 = until --duration)")
	f.Float64Var(&cfg.Rate, "rate", 0, "requests per second in all, open loop (0 = as fast as the server answers)")
	f.IntVar(&cfg.Pipeline, "pipeline", 1, "requests in flight per connection (closed loop)")
	f.StringVarP(&cfg.Method, "method", "m", "GET", "request method")
	f.StringArrayVarP(&headers, "header", "H", nil, "request header \"Name: value\" (repeatable)")
	f.StringVar(&body, "body", "", "request body")
	f.BoolVarP(&insecure, "insecure", "k", false, "accept any server certificate")
	f.StringVar(&sni, "sni", "", "TLS server name to send (default: the URL's host)")
	f.BoolVar(&resume, "resume", true, "resume TLS sessions on reconnection (--resume=false: full handshakes)")
	f.BoolVar(&cfg.DisableKeepAlive, "no-keepalive", false, "a new connection for every request (Connection: close)")
	f.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "bound on each request")
	f.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	f.StringVar(&vs, "vs", "", "second URL: alternate runs against both and compare")
	f.IntVar(&rounds, "rounds", 5, "runs against each server with --vs")
	f.BoolVar(&allowErrors, "allow-errors", false, "exit 0 even when requests failed (by default any failed request makes the exit code 1)")
	cmd.SetFlagErrorFunc(flagError)
	return cmd
}

func report(w io.Writer, cfg bench.Config, r bench.Result) {
	mode := "closed loop"
	if cfg.Rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f req/s", cfg.Rate)
	} else if cfg.Pipeline > 1 {
		mode = fmt.Sprintf("closed loop, pipeline %d", cfg.Pipeline)
	}
	fmt.Fprintf(w, "%s: %d connections, %s, %.2fs\n", cfg.URL, cfg.Conns, mode, r.Seconds)
	fmt.Fprintf(w, "  requests   %d (%.1f/s), %.2f MB/s of body\n", r.Requests, r.RPS, float64(r.BodyBytes)/r.Seconds/1e6)
	k := r.ByKind
	fmt.Fprintf(w, "  errors     %d (connect %d, tls %d, timeout %d, status %d, io %d)\n",
		r.Errors, k.Connect, k.TLS, k.Timeout, k.Status, k.IO)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error %s\n", r.FirstError)
	}
	l := r.Latency
	fmt.Fprintf(w, "  latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max))
	if r.Handshakes > 0 {
		fmt.Fprintf(w, "  handshakes %d during the run (%d resumed)\n", r.Handshakes, r.Resumed)
	}
}

func us(v int64) string {
	return (time.Duration(v) * time.Microsecond).String()
}

func runCompare(ctx context.Context, w io.Writer, a bench.Config, urlB string, rounds int, jsonOut, allowErrors bool) error {
	b := a
	b.URL = urlB
	if a.Duration == 0 || a.Requests > 0 {
		return usageError{fmt.Errorf("--vs compares runs of equal --duration: give -d, not -n")}
	}
	c, err := bench.Compare(ctx, a, b, rounds)
	if err != nil {
		return usageError{err}
	}
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	}
	fmt.Fprintf(w, "%d rounds of %v each, alternating A and B, %d connections\n", c.Rounds, a.Duration, a.Conns)
	fmt.Fprintf(w, "  A %s\n  B %s\n", a.URL, urlB)
	fmt.Fprintf(w, "  %-10s %28s %28s %22s\n", "", "A median [min-max]", "B median [min-max]", "A/B median [min-max]")
	row := func(name string, x, y, ratio bench.Spread, f string) {
		fmt.Fprintf(w, "  %-10s %28s %28s %22s\n", name,
			fmt.Sprintf(f+" ["+f+"-"+f+"]", x.Median, x.Min, x.Max),
			fmt.Sprintf(f+" ["+f+"-"+f+"]", y.Median, y.Min, y.Max),
			fmt.Sprintf("%.3f [%.3f-%.3f]", ratio.Median, ratio.Min, ratio.Max))
	}
	row("req/s", c.A.RPS, c.B.RPS, c.RPSRatio, "%.0f")
	row("p50 µs", c.A.P50, c.B.P50, c.P50Ratio, "%.0f")
	row("p99 µs", c.A.P99, c.B.P99, c.P99Ratio, "%.0f")
	fmt.Fprintf(w, "  errors     A %d, B %d\n", c.A.Errors, c.B.Errors)
	return failed(c.A.Errors+c.B.Errors, allowErrors)
}

// failed is the command's error when requests failed: a load test whose
// requests fail measured nothing, and a script must see it (exit 1),
// unless --allow-errors says failures are expected.
func failed(errors uint64, allow bool) error {
	if errors == 0 || allow {
		return nil
	}
	return fmt.Errorf("%d requests failed (--allow-errors to exit 0 anyway)", errors)
}

// isTerminal reports whether f is a character device, as a terminal is.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
