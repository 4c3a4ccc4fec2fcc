package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// cpuTicks sums utime+stime, and utime alone, over the processes (all
// their threads), in clock ticks, from /proc/PID/stat.
func cpuTicks(pids []int) (total, user int64, err error) {
	for _, p := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			return 0, 0, fmt.Errorf("cpu time of process %d: %w", p, err)
		}
		// The command name, in parentheses, may hold spaces: the fields
		// that follow it are state (3), ..., utime (14), stime (15).
		i := bytes.LastIndexByte(b, ')')
		f := bytes.Fields(b[i+1:])
		if i < 0 || len(f) < 13 {
			return 0, 0, fmt.Errorf("cpu time of process %d: cannot parse %q", p, b)
		}
		ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
		st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("cpu time of process %d: cannot parse %q", p, b)
		}
		total += ut + st
		user += ut
	}
	return total, user, nil
}

// rssKiB sums VmRSS over the processes, in KiB, from /proc/PID/status.
func rssKiB(pids []int) (int64, error) {
	var total int64
	for _, p := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/status")
		if err != nil {
			return 0, fmt.Errorf("rss of process %d: %w", p, err)
		}
		_, rest, ok := bytes.Cut(b, []byte("\nVmRSS:"))
		f := bytes.Fields(rest)
		if !ok || len(f) < 1 {
			return 0, fmt.Errorf("rss of process %d: no VmRSS in /proc/%d/status", p, p)
		}
		kib, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("rss of process %d: %w", p, err)
		}
		total += kib
	}
	return total, nil
}
