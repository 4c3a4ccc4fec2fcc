package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/bench"
)

// perCPURun is a run of one CPU-second at 100 clock ticks per second, so its
// requests per CPU-second are its requests, and its req/s a tenth of them.
func perCPURun(round int, server string, requests int64) Run {
	return Run{Round: round, Conns: 100, Server: server, Seconds: 10, Requests: requests,
		RPS: float64(requests) / 10, CPUTicks: 100, UserTicks: 40, ClockTick: 100}
}

func spread(median, lo, hi float64, n int) bench.Spread {
	return bench.Spread{Median: median, Min: lo, Max: hi, N: n}
}

func TestThroughputStatistics(t *testing.T) {
	for _, tc := range []struct {
		name string
		runs []Run
		// fastserve's row
		perCPU, vsNginx, vsCeiling bench.Spread
	}{{
		// Per round fastserve/nginx = 100/50, 300/300, 200/400 = 2, 1, 0.5:
		// the median ratio is 1, where the ratio of the medians would be 200/300.
		name: "odd rounds",
		runs: []Run{
			perCPURun(1, "fastserve", 100), perCPURun(1, "nginx", 50), perCPURun(1, "ceiling", 200),
			perCPURun(2, "fastserve", 300), perCPURun(2, "nginx", 300), perCPURun(2, "ceiling", 600),
			perCPURun(3, "fastserve", 200), perCPURun(3, "nginx", 400), perCPURun(3, "ceiling", 400),
		},
		perCPU:    spread(200, 100, 300, 3),
		vsNginx:   spread(1, 0.5, 2, 3),
		vsCeiling: spread(0.5, 0.5, 0.5, 3),
	}, {
		name: "even rounds take the mean of the middle two",
		runs: []Run{
			perCPURun(1, "fastserve", 100), perCPURun(1, "nginx", 100),
			perCPURun(2, "fastserve", 400), perCPURun(2, "nginx", 200),
			perCPURun(3, "fastserve", 300), perCPURun(3, "nginx", 100),
			perCPURun(4, "fastserve", 200), perCPURun(4, "nginx", 400),
		},
		perCPU:  spread(250, 100, 400, 4),
		vsNginx: spread(1.5, 0.5, 3, 4), // 1, 2, 3, 0.5
	}, {
		name: "a round without the reference has no ratio",
		runs: []Run{
			perCPURun(1, "fastserve", 100), perCPURun(1, "nginx", 50),
			perCPURun(2, "fastserve", 300),
			perCPURun(3, "fastserve", 200), perCPURun(3, "nginx", 400),
		},
		perCPU:  spread(200, 100, 300, 3),
		vsNginx: spread(1.25, 0.5, 2, 2),
	}, {
		name: "a reference that used no CPU has no ratio",
		runs: []Run{
			perCPURun(1, "fastserve", 100), {Round: 1, Conns: 100, Server: "nginx", Seconds: 10, ClockTick: 100},
			perCPURun(2, "fastserve", 300), perCPURun(2, "nginx", 100),
		},
		perCPU:  spread(200, 100, 300, 2),
		vsNginx: spread(3, 3, 3, 1),
	}, {
		name:   "no reference, no ceiling",
		runs:   []Run{perCPURun(1, "fastserve", 100), perCPURun(2, "fastserve", 200)},
		perCPU: spread(150, 100, 200, 2),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := throughput(tc.runs, "nginx", "ceiling")
			require.NoError(t, err)
			require.NotEmpty(t, rows)
			fs := rows[0]
			require.Equal(t, "fastserve", fs.Server)
			assert.Equal(t, tc.perCPU, fs.PerCPU, "requests per CPU-second")
			n := tc.perCPU.N
			assert.Equal(t, spread(tc.perCPU.Median/10, tc.perCPU.Min/10, tc.perCPU.Max/10, n), fs.RPS, "req/s")
			assert.Equal(t, spread(0.1, 0.1, 0.1, n), fs.Busy, "one CPU-second in ten")
			assert.Equal(t, tc.vsNginx, fs.CPUVsReference, "per CPU-second vs nginx")
			assert.Equal(t, tc.vsNginx, fs.RPSVsReference, "req/s vs nginx: the runs have equal CPU time")
			assert.Equal(t, tc.vsCeiling, fs.CPUVsCeiling, "per CPU-second vs ceiling")
		})
	}
}

func TestThroughputOrder(t *testing.T) {
	var runs []Run
	for round := 1; round <= 2; round++ {
		for _, c := range []int{1000, 100} {
			for _, s := range []string{"nginx", "fastserve"} {
				r := perCPURun(round, s, 100)
				r.Conns = c
				runs = append(runs, r)
			}
		}
	}
	rows, err := throughput(runs, "nginx", "ceiling")
	require.NoError(t, err)
	var got []peer
	for _, r := range rows {
		got = append(got, r.peer)
	}
	assert.Equal(t, []peer{{"", 1000, "nginx"}, {"", 1000, "fastserve"}, {"", 100, "nginx"}, {"", 100, "fastserve"}}, got,
		"as the script ran them")

	_, err = throughput(append(runs, runs[0]), "nginx", "ceiling")
	assert.ErrorContains(t, err, "two runs of nginx at 1000 conns in round 1")
}

// The runs of docs/peers-2026-11-25-0517.md (its table of every run, with RSS
// under load) give the throughput table run.sh printed for them.
func TestThroughputTable(t *testing.T) {
	run := func(server string, rps float64, requests, cpu, user, rssMiB int64) Run {
		return Run{Round: 1, Conns: 100, Server: server, Seconds: 2, Requests: requests, RPS: rps,
			CPUTicks: cpu, UserTicks: user, ClockTick: 100, RSS: rssMiB * 1024}
	}
	rows, err := throughput([]Run{
		run("fastserve", 88720, 177743, 187, 74, 22),
		run("fastserve-handler", 87294, 183147, 189, 63, 19),
		run("fasthttp", 82218, 165246, 174, 50, 16),
		run("nethttp", 58810, 123427, 206, 104, 15),
		run("nginx", 86039, 172348, 196, 78, 27),
		run("ceiling", 92302, 185002, 173, 33, 16),
	}, "nginx", "ceiling")
	require.NoError(t, err)
	var b bytes.Buffer
	printThroughput(&b, rows, "nginx", "ceiling")
	assert.Equal(t, `| server | conns | req/s | req per server CPU-s | server µs per request: user + kernel | server CPU busy | server RSS under load | req/s vs nginx | req/CPU-s vs nginx | req/CPU-s vs ceiling |
|---|---|---|---|---|---|---|---|---|---|
| fastserve | 100 | 88,720 [88,720-88,720] | **95,050** [95,050-95,050] | 4.16 + 6.36 | 94% | 22 MiB | 1.03 [1.03-1.03] | **1.08 [1.08-1.08]** | 0.89 [0.89-0.89] |
| fastserve-handler | 100 | 87,294 [87,294-87,294] | **96,903** [96,903-96,903] | 3.44 + 6.88 | 94% | 19 MiB | 1.01 [1.01-1.01] | **1.10 [1.10-1.10]** | 0.91 [0.91-0.91] |
| fasthttp | 100 | 82,218 [82,218-82,218] | **94,969** [94,969-94,969] | 3.03 + 7.50 | 87% | 16 MiB | 0.96 [0.96-0.96] | **1.08 [1.08-1.08]** | 0.89 [0.89-0.89] |
| nethttp | 100 | 58,810 [58,810-58,810] | **59,916** [59,916-59,916] | 8.43 + 8.26 | 103% | 15 MiB | 0.68 [0.68-0.68] | **0.68 [0.68-0.68]** | 0.56 [0.56-0.56] |
| nginx | 100 | 86,039 [86,039-86,039] | **87,933** [87,933-87,933] | 4.53 + 6.85 | 98% | 27 MiB | 1.00 [1.00-1.00] | **1.00 [1.00-1.00]** | 0.82 [0.82-0.82] |
| ceiling | 100 | 92,302 [92,302-92,302] | **106,938** [106,938-106,938] | 1.78 + 7.57 | 86% | 16 MiB | 1.07 [1.07-1.07] | **1.22 [1.22-1.22]** | 1.00 [1.00-1.00] |
`, b.String())

	b.Reset()
	printThroughput(&b, []row{{peer: peer{"", 100, "fastserve"}, RPS: spread(1234567, 999, 1234567, 2)}}, "nginx", "ceiling")
	assert.Contains(t, b.String(), "| fastserve | 100 | 1,234,567 [999-1,234,567] |")
	assert.Contains(t, b.String(), "| - | **-** | - |\n", "no ratio without the reference and the ceiling")
}

// proxy.sh's runs: a peer per body, the ratio to nginx taken at the same
// body and connection count, the upstream's figures beside the proxy's.
func TestProxyTable(t *testing.T) {
	proxyRun := func(round int, body, server string, requests, cpu, upstream, conns int64) Run {
		return Run{Round: round, Conns: 100, Server: server, Seconds: 2, Requests: requests, RPS: float64(requests) / 2,
			CPUTicks: cpu, UserTicks: cpu / 2, ClockTick: 100, RSS: 10 << 10,
			Body: body, UpstreamTicks: upstream, UpstreamConns: conns}
	}
	var runs []Run
	for round := 1; round <= 3; round++ {
		// fastserve/nginx per round, 13B: 1.2, 0.8, 1.0; 4KiB: 0.5 each time.
		f := []int64{120, 80, 100}[round-1]
		runs = append(runs,
			proxyRun(round, "13B", "nginx", 100000, 100, 50, 0),
			proxyRun(round, "13B", "fastserve", f*1000, 100, 50, 0),
			proxyRun(round, "4KiB", "nginx", 50000, 100, 40, int64(round)),
			proxyRun(round, "4KiB", "fastserve", 50000, 200, 40, 0))
	}
	rows, err := throughput(runs, "nginx", "")
	require.NoError(t, err)
	var got []peer
	for _, r := range rows {
		got = append(got, r.peer)
	}
	assert.Equal(t, []peer{{"13B", 100, "nginx"}, {"13B", 100, "fastserve"}, {"4KiB", 100, "nginx"}, {"4KiB", 100, "fastserve"}}, got)
	assert.Equal(t, spread(1, 0.8, 1.2, 3), rows[1].CPUVsReference)
	assert.Equal(t, spread(0.5, 0.5, 0.5, 3), rows[3].CPUVsReference, "against nginx at 4KiB, not at 13B")
	assert.Equal(t, spread(0, 0, 0, 0), rows[1].CPUVsCeiling, "no ceiling")
	assert.Equal(t, spread(2, 1, 3, 3), rows[2].UpstreamConns)

	var b bytes.Buffer
	printProxy(&b, rows, "nginx")
	lines := strings.Split(b.String(), "\n")
	require.Len(t, lines, 7)
	assert.Equal(t, "| proxy | body | conns | req/s | req per proxy CPU-s | proxy µs per request: user + kernel | proxy CPU busy | proxy RSS under load | upstream µs per request | upstream conns opened per run | req/s vs nginx | req/CPU-s vs nginx |", lines[0])
	assert.Equal(t, "| fastserve | 13B | 100 | 50,000 [40,000-60,000] | **100,000** [80,000-120,000] | 5.00 + 5.00 | 50% | 10 MiB | 5.00 | 0 [0-0] | 1.00 [0.80-1.20] | **1.00 [0.80-1.20]** |", lines[3])
	assert.Equal(t, "| nginx | 4KiB | 100 | 25,000 [25,000-25,000] | **50,000** [50,000-50,000] | 10.00 + 10.00 | 50% | 10 MiB | 8.00 | 2 [1-3] | 1.00 [1.00-1.00] | **1.00 [1.00-1.00]** |", lines[4])

	path := writeFile(t,
		`{"round":1,"conns":100,"server":"nginx","seconds":2,"requests":1000,"rps":500,"errors":0,"cpu_ticks":10,"user_ticks":5,"clk_tck":100,"rss_kib":1024,"body":"13B","upstream_ticks":4,"upstream_conns":0}`,
		`{"round":1,"conns":100,"server":"nginx","seconds":2,"requests":1000,"rps":500,"errors":0,"cpu_ticks":10,"user_ticks":5,"clk_tck":100,"rss_kib":1024,"body":"4KiB","upstream_ticks":4,"upstream_conns":0}`)
	b.Reset()
	require.NoError(t, run([]string{"runs", "-last", path}, &b))
	assert.Equal(t, "round 1  c=100   nginx body=4KiB       500 req/s  server CPU   0.10 s (  5%)     10000 req/CPU-s  errors 0\n", b.String())
	b.Reset()
	require.NoError(t, run([]string{"proxy", path}, &b))
	assert.Contains(t, b.String(), "| nginx | 13B | 100 | 500 [500-500] | **10,000** [10,000-10,000] |")
	assert.Error(t, run([]string{"proxy", "-ceiling", "x", path}, &b), "the proxy table has no ceiling")
}

func TestABRatio(t *testing.T) {
	ab := func(round int, server string, requests, ticks int64) Run {
		return Run{Round: round, Conns: 50, Server: server, Seconds: 6, Requests: requests, CPUTicks: ticks, ClockTick: 100}
	}
	for _, tc := range []struct {
		name string
		runs []Run
		want bench.Spread
		err  string
	}{{
		// B/A per round: 2, 1, 0.5.
		name: "odd rounds",
		runs: []Run{ab(1, "A", 100, 100), ab(1, "B", 200, 100), ab(2, "A", 300, 100), ab(2, "B", 300, 100),
			ab(3, "A", 400, 200), ab(3, "B", 100, 100)},
		want: spread(1, 0.5, 2, 3),
	}, {
		name: "even rounds",
		runs: []Run{ab(1, "A", 100, 100), ab(1, "B", 300, 100), ab(2, "A", 100, 100), ab(2, "B", 200, 100)},
		want: spread(2.5, 2, 3, 2),
	}, {
		name: "a round cut short has no ratio",
		runs: []Run{ab(1, "A", 100, 100), ab(1, "B", 300, 100), ab(2, "A", 100, 100)},
		want: spread(3, 3, 3, 1),
	}, {
		name: "A used no CPU",
		runs: []Run{ab(1, "A", 100, 0), ab(1, "B", 300, 100)},
		err:  "no round measured both A and B",
	}, {
		name: "a third server",
		runs: []Run{ab(1, "C", 100, 100)},
		err:  `server must be A or B, got "C"`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := abRatio(tc.runs)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// writeFile writes the lines to a file in a temporary directory.
func writeFile(t testing.TB, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runs.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return path
}

func TestCommandLines(t *testing.T) {
	runs := writeFile(t,
		`{"round":1,"conns":50,"server":"A","seconds":6,"requests":600000,"cpu_ticks":600,"clk_tck":100}`,
		`{"round":1,"conns":50,"server":"B","seconds":6,"requests":550000,"cpu_ticks":500,"clk_tck":100}`,
		``,
		`{"round":2,"conns":50,"server":"A","seconds":6,"requests":500000,"cpu_ticks":500,"clk_tck":100}`,
		`{"round":2,"conns":50,"server":"B","seconds":6,"requests":480000,"cpu_ticks":400,"clk_tck":100}`)
	idle := writeFile(t,
		`{"server":"fastserve","conns":1000,"rss_kib_before":10240,"rss_kib":30720,"rss_kib_later":20480,"settle_s":3,"settle_later_s":20,"fds_before":13,"fds":1013,"nofile":"nofile limit: soft 65536, hard 65536"}`,
		`{"server":"nginx","conns":1000,"rss_kib_before":20480,"rss_kib":35840,"rss_kib_later":35840,"settle_s":3,"settle_later_s":20,"fds_before":22,"fds":1022,"nofile":"nofile limit: soft 65536, hard 65536"}`)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"ab", []string{"ab", runs}, "B/A req per server CPU-s: median 1.150 [1.100-1.200] over 2 rounds\n"},
		{"ab -last", []string{"ab", "-last", runs}, "round 2 B: 480000 requests, 4000 ms server CPU, 120000 req/CPU-s\n"},
		{"runs -last", []string{"runs", "-last", runs},
			"round 2  c=50    B                 0 req/s  server CPU   4.00 s ( 67%)    120000 req/CPU-s  errors 0\n"},
		{"runs", []string{"runs", runs}, "| round | conns | server | req/s | requests | server CPU-s (user + kernel) | req per server CPU-s | wrk errors |\n" +
			"|---|---|---|---|---|---|---|---|\n" +
			"| 1 | 50 | A | 0 | 600000 | 6.00 (0.00 + 6.00) | 100000 | 0 |\n" +
			"| 1 | 50 | B | 0 | 550000 | 5.00 (0.00 + 5.00) | 110000 | 0 |\n" +
			"| 2 | 50 | A | 0 | 500000 | 5.00 (0.00 + 5.00) | 100000 | 0 |\n" +
			"| 2 | 50 | B | 0 | 480000 | 4.00 (0.00 + 4.00) | 120000 | 0 |\n"},
		{"idle", []string{"idle", idle}, "| server | RSS before | RSS with the connections (+3 s) | KiB per connection, +3 s | KiB per connection, +20 s | open fds before -> after |\n" +
			"|---|---|---|---|---|---|\n" +
			"| fastserve | 10.0 MiB | 30.0 MiB | **20.5** | **10.2** | 13 -> 1013 |\n" +
			"| nginx | 20.0 MiB | 35.0 MiB | **15.4** | **15.4** | 22 -> 1022 |\n" +
			"\nidleconns: nofile limit: soft 65536, hard 65536\n"},
		{"idle -last", []string{"idle", "-last", idle},
			"idle  nginx     RSS    20.0 ->    35.0 MiB   15.4 KiB per connection ( 15.4 later)  fds 22 -> 1022\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, run(tc.args, &b))
			assert.Equal(t, tc.want, b.String())
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"no command", nil, "bad command line"},
		{"unknown command", []string{"median", runs}, `unknown report "median"`},
		{"two files", []string{"runs", runs, runs}, "want one file, got 2 arguments"},
		{"a flag of another report", []string{"runs", "-reference", "nethttp", runs}, "flag provided but not defined: -reference"},
		{"unknown field", []string{"runs", writeFile(t, `{"round":1,"server":"A","clk_tck":100,"rss":1}`)}, `runs.jsonl:1: json: unknown field "rss"`},
		{"no clock tick", []string{"runs", writeFile(t, `{"round":1,"server":"A"}`)}, "runs.jsonl:1: clk_tck must be >= 1, got 0"},
		{"a wrk output that was not a number", []string{"runs", writeFile(t, `{"round":1,"server":"A","requests":,"clk_tck":100}`)}, "runs.jsonl:1: invalid character"},
		{"empty file", []string{"ab", "-last", writeFile(t)}, "no runs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorContains(t, run(tc.args, &bytes.Buffer{}), tc.err)
		})
	}
}

// A CPU profile's stacks, as go tool pprof -traces prints them, go each to
// the first group that matches: a write under the proxy's upstream
// connection is the upstream's, a clock read under the proxy's prepare is
// a clock read; the cumulative shares count every stack a function is in.
func TestCPUGroups(t *testing.T) {
	traces := `File: fastserve
Type: cpu
Duration: 1s, Total samples = 1s (100%)
-----------+-------------------------------------------------------
     500ms   internal/runtime/syscall/linux.Syscall6
             syscall.write
             github.com/fastserve/fastserve/proxy.(*timedConn).Write
             bufio.(*Writer).Flush
             github.com/fastserve/fastserve/proxy.(*Proxy).roundTrip
             github.com/fastserve/fastserve/proxy.(*Proxy).serve
             github.com/valyala/fasthttp.(*Server).serveConn
-----------+-------------------------------------------------------
     200ms   time.runtimeNow
             time.Now (inline)
             github.com/fastserve/fastserve/proxy.(*Proxy).prepare
             github.com/fastserve/fastserve/proxy.(*Proxy).serve
             github.com/valyala/fasthttp.(*Server).serveConn
-----------+-------------------------------------------------------
     200ms   github.com/valyala/fasthttp.normalizeHeaderKey
             github.com/valyala/fasthttp.(*RequestHeader).Del
             github.com/fastserve/fastserve/proxy.stripHopByHop
             github.com/fastserve/fastserve/proxy.(*Proxy).prepare
             github.com/fastserve/fastserve/proxy.(*Proxy).serve
             github.com/valyala/fasthttp.(*Server).serveConn
-----------+-------------------------------------------------------
      60ms   runtime.mapaccess2
             github.com/fastserve/fastserve/sites.(*Router).Handle
             github.com/valyala/fasthttp.(*Server).serveConn
-----------+-------------------------------------------------------
      40ms   github.com/valyala/fasthttp.(*Server).serveConn
`
	stacks, err := readTraces(strings.NewReader(traces))
	require.NoError(t, err)
	require.Len(t, stacks, 5)
	assert.Equal(t, []string{"time.runtimeNow", "time.Now", "github.com/fastserve/fastserve/proxy.(*Proxy).prepare",
		"github.com/fastserve/fastserve/proxy.(*Proxy).serve", "github.com/valyala/fasthttp.(*Server).serveConn"}, stacks[1].frames)

	groups, cum, total := cpuShares(stacks)
	assert.Equal(t, time.Second, total)
	got := map[string]time.Duration{}
	for _, g := range groups {
		if g.d > 0 {
			got[g.area+": "+g.name] = g.d
		}
	}
	assert.Equal(t, map[string]time.Duration{
		"system calls: write to the upstream":                                500 * time.Millisecond,
		"runtime: clock reads (time.Now, nanotime)":                          200 * time.Millisecond,
		"proxy: request headers (prepare: CopyTo, stripHopByHop, forwarded)": 200 * time.Millisecond,
		"fastserve: server, sites, access log":                               60 * time.Millisecond,
		"fasthttp: the rest (serveConn, RequestCtx, pools)":                  40 * time.Millisecond,
	}, got)
	cumOf := map[string]time.Duration{}
	for _, c := range cum {
		cumOf[c.name] = c.d
	}
	assert.Equal(t, 400*time.Millisecond, cumOf["proxy.(*Proxy).prepare"])
	assert.Equal(t, 900*time.Millisecond, cumOf["proxy.(*Proxy).serve"])

	var b bytes.Buffer
	printCPU(&b, groups, cum, total)
	assert.Contains(t, b.String(), "| system calls | write to the upstream | 50.0% | 0.50 s |\n")
	assert.Contains(t, b.String(), "| **proxy** | all | **20.0%** | 0.20 s |\n")
	assert.Contains(t, b.String(), "| proxy.(*Proxy).prepare | 40.0% |\n")

	_, err = readTraces(strings.NewReader("File: x\n"))
	assert.ErrorContains(t, err, "no stacks")
	_, err = readTraces(strings.NewReader("-----------+---\n  lots   main.f\n"))
	assert.ErrorContains(t, err, "line 2")
}

// A run in which no request completed (a starved client) is left out of
// the figures and the ratios, and named; runs with the proxy mostly idle
// are counted.
func TestProxyRunsLeftOut(t *testing.T) {
	runs := []Run{
		perCPURun(1, "nginx", 100), perCPURun(1, "fastserve", 200),
		perCPURun(2, "nginx", 0), perCPURun(2, "fastserve", 300),
		perCPURun(3, "nginx", 100), perCPURun(3, "fastserve", 0),
	}
	rows, err := throughput(runs, "nginx", "")
	require.NoError(t, err)
	require.Len(t, rows, 2)
	assert.Equal(t, spread(100, 100, 100, 2), rows[0].PerCPU, "nginx without round 2")
	assert.Equal(t, spread(250, 200, 300, 2), rows[1].PerCPU, "fastserve without round 3")
	assert.Equal(t, spread(2, 2, 2, 1), rows[1].CPUVsReference, "round 1 alone has both")

	var b bytes.Buffer
	printRunWarnings(&b, runs)
	assert.Contains(t, b.String(), "Left out, no request completed in the run: round 2 nginx c=100, round 3 fastserve c=100.")
	assert.Contains(t, b.String(), "4 of 6 runs had the proxy on its CPU less than half the run")
}
