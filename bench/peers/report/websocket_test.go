package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wsRun is an echo run of one CPU-second in a 10 s window, so its
// messages per CPU-second are its messages.
func wsRun(round int, server string, messages int64, p99 float64) WSRun {
	return WSRun{Round: round, Server: server, Conns: 100, Size: 64, Seconds: 10, Messages: messages,
		Rate: float64(messages) / 10, P50: p99 / 4, P99: p99, CPUTicks: 100, UserTicks: 25, ClockTick: 100}
}

func TestWSThroughput(t *testing.T) {
	// Per round fastserve/nginx in messages per CPU-second: 2, 1, 0.5;
	// in p99: 0.5, 1, 3.
	rows, err := wsThroughput([]WSRun{
		wsRun(1, "fastserve", 200, 1000), wsRun(1, "nginx", 100, 2000),
		wsRun(2, "fastserve", 300, 3000), wsRun(2, "nginx", 300, 3000),
		wsRun(3, "fastserve", 100, 6000), wsRun(3, "nginx", 200, 2000),
	}, "nginx")
	require.NoError(t, err)
	require.Len(t, rows, 2)
	fs := rows[0]
	assert.Equal(t, peer{Conns: 100, Server: "fastserve"}, fs.peer)
	assert.Equal(t, spread(200, 100, 300, 3), fs.PerCPU)
	assert.Equal(t, spread(1, 0.5, 2, 3), fs.PerCPUVsReference, "the median of the per-round ratios")
	assert.Equal(t, spread(1, 0.5, 3, 3), fs.P99VsReference)
	assert.Equal(t, spread(3000, 1000, 6000, 3), fs.P99)
	assert.Equal(t, spread(0.1, 0.1, 0.1, 3), fs.Busy)

	var b bytes.Buffer
	printWSThroughput(&b, rows[:1], "nginx")
	assert.Equal(t, "| proxy | conns | msg bytes | messages/s | messages per proxy CPU-s | proxy µs per message: user + kernel | proxy CPU busy | proxy RSS under load | p50 ms | p99 ms | msg/CPU-s vs nginx | p99 vs nginx | errors |\n"+
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"+
		"| fastserve | 100 | 64 | 20 [10-30] | **200** [100-300] | 1250.00 + 3750.00 | 10% | 0 MiB | 0.75 | 3.00 [1.00-6.00] | **1.00 [0.50-2.00]** | 1.00 [0.50-3.00] | 0 |\n",
		b.String())

	_, err = wsThroughput([]WSRun{wsRun(1, "nginx", 1, 1), wsRun(1, "nginx", 1, 1)}, "nginx")
	assert.ErrorContains(t, err, "two runs of nginx at 100 conns in round 1")
}

func TestWSCommandLines(t *testing.T) {
	runs := writeFile(t,
		`{"round":1,"server":"fastserve","conns":100,"size":64,"seconds":5,"messages":100000,"rate":20000,"errors":0,"p50_us":3000,"p90_us":9000,"p99_us":40000,"p999_us":90000,"max_us":120000,"cpu_ticks":200,"user_ticks":50,"clk_tck":100,"rss_kib":30720,"tls":"TLS 1.3 TLS_AES_128_GCM_SHA256","nofile":"nofile limit: soft 20000, hard 20000"}`,
		`{"round":1,"server":"nginx","conns":100,"size":64,"seconds":5,"messages":90000,"rate":18000,"errors":1,"first_error":"EOF","p50_us":3500,"p90_us":9000,"p99_us":50000,"p999_us":90000,"max_us":110000,"cpu_ticks":150,"user_ticks":60,"clk_tck":100,"rss_kib":10240,"tls":"TLS 1.3 TLS_AES_128_GCM_SHA256","nofile":"nofile limit: soft 20000, hard 20000"}`)
	idle := writeFile(t,
		`{"server":"fastserve","conns":2000,"rss_kib_before":10240,"rss_kib":71680,"rss_kib_later":51200,"settle_s":3,"settle_later_s":20,"fds_before":12,"fds":4012,"nofile":"nofile limit: soft 20000, hard 20000"}`)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"ws-throughput", []string{"ws-throughput", runs}, "| fastserve | 100 | 64 | 20,000 [20,000-20,000] | **50,000** [50,000-50,000] | 5.00 + 15.00 | 40% | 30 MiB | 3.00 | 40.00 [40.00-40.00] | **0.83 [0.83-0.83]** | 0.80 [0.80-0.80] | 0 |\n"},
		{"ws-runs -last", []string{"ws-runs", "-last", runs},
			"round 1  c=100   nginx        18000 msg/s  proxy CPU   1.50 s ( 30%)    60000 msg/CPU-s  p50   3.50 ms  p99   50.00 ms  errors 1\n"},
		{"ws-runs", []string{"ws-runs", runs}, "| 1 | 100 | nginx | 18000 | 90000 | 1.50 (0.60 + 0.90) | 60000 | 3.50 | 50.00 | 110.0 | 1 |\n\n" +
			"TLS negotiated by wsload: fastserve: TLS 1.3 TLS_AES_128_GCM_SHA256; nginx: TLS 1.3 TLS_AES_128_GCM_SHA256\n"},
		{"ws-idle", []string{"ws-idle", idle}, "| fastserve | 2,000 | 10.0 MiB | 70.0 MiB | **30.7** | **20.5** | 12 -> 4012 (2.00) |\n\nwsload: nofile limit: soft 20000, hard 20000\n"},
		{"ws-idle -last", []string{"ws-idle", "-last", idle},
			"idle  fastserve RSS    10.0 ->    70.0 MiB   30.7 KiB per WebSocket ( 20.5 later)  fds 12 -> 4012\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, run(tc.args, &b))
			assert.Contains(t, b.String(), tc.want)
		})
	}
	assert.ErrorContains(t, run([]string{"ws-throughput", "-last", runs}, &bytes.Buffer{}), "flag provided but not defined: -last")
	assert.ErrorContains(t, run([]string{"ws-runs", "-last", writeFile(t)}, &bytes.Buffer{}), "no runs")
}
