package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// A CPU profile as `go tool pprof -traces` prints it: a header, then one
// block per distinct stack, each opened by a line of dashes, its first
// line the stack's time and its leaf function, the other lines its
// callers, one a line:
//
//	-----------+-------------------------------------------------------
//	     360ms   internal/runtime/syscall/linux.Syscall6
//	             syscall.RawSyscall6
//	             ...

// stack is one distinct stack of a profile and the time sampled in it,
// leaf first.
type stack struct {
	d      time.Duration
	frames []string
}

// has reports whether a frame of the stack contains any of subs.
func (s stack) has(subs ...string) bool {
	for _, f := range s.frames {
		for _, sub := range subs {
			if strings.Contains(f, sub) {
				return true
			}
		}
	}
	return false
}

// readTraces reads pprof's -traces text.
func readTraces(r io.Reader) ([]stack, error) {
	var out []stack
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	open := false // a dashes line was the last non-frame line
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "-----------+"):
			open = true
		case line == "":
		case open:
			v, fn, ok := strings.Cut(line, " ")
			d, err := time.ParseDuration(v)
			if !ok || err != nil {
				return nil, fmt.Errorf("line %d: want a time and a function after the dashes, got %q", n, line)
			}
			out = append(out, stack{d: d, frames: []string{frame(fn)}})
			open = false
		case len(out) > 0:
			out[len(out)-1].frames = append(out[len(out)-1].frames, frame(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no stacks: want the output of go tool pprof -traces")
	}
	return out, nil
}

// frame is a function name without pprof's " (inline)" mark.
func frame(s string) string {
	return strings.TrimSuffix(strings.TrimSpace(s), " (inline)")
}

// cpuGroup is one share of the CPU: the stacks it matches, that no group
// before it in cpuGroups matched.
type cpuGroup struct {
	area, name string
	match      func(s stack) bool
}

func has(subs ...string) func(stack) bool { return func(s stack) bool { return s.has(subs...) } }

func both(a, b func(stack) bool) func(stack) bool { return func(s stack) bool { return a(s) && b(s) } }

// leafmost matches a stack whose frame nearest the leaf among fastserve's
// and fasthttp's is in sub: every stack runs under fasthttp's serveConn, so
// the code nearest the leaf is the one to charge.
func leafmost(sub string) func(stack) bool {
	return func(s stack) bool {
		for _, f := range s.frames {
			if strings.Contains(f, "fastserve/fastserve/") || strings.Contains(f, "valyala/fasthttp") {
				return strings.Contains(f, sub)
			}
		}
		return false
	}
}

// inSyscall is a stack in a system call, or in Go's entry to and exit from
// one.
var inSyscall = has("internal/runtime/syscall/", "syscall.Syscall", "syscall.RawSyscall", "syscall.rawSyscall",
	"golang.org/x/sys/unix.Syscall", "golang.org/x/sys/unix.RawSyscall", "runtime.futex", "runtime.usleep",
	"runtime.entersyscall", "runtime.exitsyscall", "runtime.reentersyscall", "runtime.madvise", "runtime.mmap")

// cpuGroups are the shares report cpu prints, in order: what the CPU does
// (system calls, memory, clocks, timers, the scheduler) first, then whose
// code does the rest, from the innermost (crypto) out to the server. The
// names are fastserve's reverse proxy's and static server's, as
// bench/peers/profile.sh profiles them.
var cpuGroups = []cpuGroup{
	{"system calls", "write to the upstream", both(inSyscall, has("proxy.(*timedConn).Write"))},
	{"system calls", "write to the client (TLS records)", both(inSyscall, has("syscall.write"))},
	{"system calls", "read from the upstream", both(inSyscall, has("proxy.(*timedConn).Read", "proxy.(*timedConn).watchedRead"))},
	{"system calls", "read from the client (TLS records)", both(inSyscall, has("syscall.read"))},
	{"system calls", "recv MSG_PEEK of a pooled upstream connection (stale)", both(inSyscall, has("tune.Unread", "tune.peek"))},
	{"system calls", "getsockopt TCP_INFO (client gone)", both(inSyscall, has("tune.PeerClosed"))},
	{"system calls", "epoll_wait (netpoll)", both(inSyscall, has("runtime.netpoll"))},
	{"system calls", "other (futex, accept, setsockopt, ...)", inSyscall},
	{"runtime", "GC and allocation", has("runtime.mallocgc", "runtime.gcBgMarkWorker", "runtime.gcAssist", "runtime.bgsweep",
		"runtime.bgscavenge", "runtime.gcStart", "runtime.newobject", "runtime.growslice", "runtime.makeslice",
		"runtime.gcDrain", "runtime.markroot", "runtime.scanobject", "runtime.gcWriteBarrier", "runtime.wbBuf")},
	{"runtime", "clock reads (time.Now, nanotime)", has("time.Now", "time.Since", "time.runtimeNow", "time.runtimeNano",
		"time.now", "runtime.nanotime", "runtime.walltime")},
	{"runtime", "deadlines and timers", has("Deadline", "runtime.(*timer", "time.(*Timer)", "time.AfterFunc", "time.NewTimer",
		"runtime.modtimer", "runtime.resettimer", "runtime.stoptimer", "fasthttp.acquireTimer", "fasthttp.releaseTimer",
		"runtime.checkTimers")},
	{"runtime", "scheduler (goroutine park and wake-up)", has("runtime.schedule", "runtime.park_m", "runtime.gopark",
		"runtime.goready", "runtime.ready", "runtime.findRunnable", "runtime.mcall", "runtime.netpollblock",
		"runtime.netpollready", "runtime.goexit0", "runtime.newproc", "runtime.casgstatus")},
	{"crypto", "AES-GCM", has("crypto/internal/fips140/aes", "crypto/aes", "crypto/cipher")},
	{"crypto", "crypto/tls record layer", has("crypto/tls.")},
	{"proxy", "request headers (prepare: CopyTo, stripHopByHop, forwarded)", has("proxy.(*Proxy).prepare")},
	{"proxy", "response headers (answer: stripHopByHop, Server)", has("proxy.(*Proxy).answer")},
	{"proxy", "balancer (pick)", has("proxy.(*proxyRoute).pick")},
	{"proxy", "target (Host, scheme)", has("proxy.(*Proxy).target")},
	{"proxy", "request write to the upstream (fasthttp Request.Write)", both(has("proxy.(*Proxy).roundTrip"), has("fasthttp.(*Request).Write"))},
	{"proxy", "upstream response head (readHead)", has("proxy.readHead")},
	{"proxy", "upstream body read whole (Response.ReadBody)", both(has("proxy.(*Proxy).roundTrip"), has("fasthttp.(*Response).ReadBody"))},
	{"proxy", "upstream body streamed (upstreamBody)", has("proxy.(*upstreamBody)")},
	{"proxy", "upstream connection pool (Acquire/Release, stale)", has("HostClient).AcquireConn", "HostClient).ReleaseConn",
		"HostClient).CloseConn", "HostClient).Acquire", "HostClient).Release", "proxy.(*timedConn).stale")},
	{"proxy", "the rest (serve, roundTrip, counters, access-log fields)", has("fastserve/proxy.")},
	{"fasthttp", "client request head read and parse", has("fasthttp.(*RequestHeader).Read", "fasthttp.(*RequestHeader).tryRead",
		"fasthttp.(*RequestHeader).parse", "fasthttp.(*Request).readLimitBody", "fasthttp.(*Request).ReadLimitBody",
		"fasthttp.(*Request).ContinueReadBody", "fasthttp.(*Request).readBodyStream")},
	{"fasthttp", "response write to the client", has("fasthttp.writeResponse", "fasthttp.(*Response).Write",
		"fasthttp.(*Response).write")},
	{"fastserve", "static files", leafmost("fastserve/static.")},
	{"fastserve", "server, sites, access log", leafmost("fastserve/fastserve/")},
	{"fasthttp", "the rest (serveConn, RequestCtx, pools)", has("valyala/fasthttp")},
	{"other", "runtime and the rest", func(stack) bool { return true }},
}

// cumFunctions are the functions report cpu gives the cumulative share of
// (the time in stacks that hold them), where the profile has them.
var cumFunctions = []string{
	"crypto/tls.(*Conn).Write", "crypto/tls.(*Conn).Read",
	"proxy.(*Proxy).serve", "proxy.(*Proxy).prepare", "fasthttp.(*RequestHeader).CopyTo", "proxy.stripHopByHop",
	"proxy.(*Proxy).forwarded", "proxy.(*Proxy).answer", "proxy.(*proxyRoute).pick", "proxy.(*Proxy).target",
	"proxy.(*Proxy).roundTrip", "proxy.readHead", "fasthttp.(*Response).ReadBody", "proxy.(*upstreamBody).Read",
	"proxy.(*timedConn).Write", "proxy.(*timedConn).Read", "proxy.(*timedConn).watchedRead", "proxy.(*timedConn).stale",
	"fasthttp.(*HostClient).AcquireConn", "fasthttp.(*HostClient).ReleaseConn", "reqinfo.AddUpstream",
	"fasthttp.(*Request).Write", "fasthttp.writeResponse", "fasthttp.(*RequestHeader).tryRead",
	"internal/poll.(*FD).SetReadDeadline", "internal/poll.(*FD).SetWriteDeadline", "internal/poll.setDeadlineImpl",
	"time.Now", "runtime.mallocgc", "runtime.gcBgMarkWorker", "runtime.netpoll", "runtime.schedule",
	"server.(*conn).Read", "server.(*conn).Write", "static.",
}

// cpuShare is a group's or a function's time in a profile.
type cpuShare struct {
	area, name string
	d          time.Duration
}

// cpuShares sorts each stack into the first group that matches it, and
// sums the time of the stacks that hold each of cumFunctions.
func cpuShares(stacks []stack) (groups, cum []cpuShare, total time.Duration) {
	groups = make([]cpuShare, len(cpuGroups))
	for i, g := range cpuGroups {
		groups[i] = cpuShare{area: g.area, name: g.name}
	}
	cum = make([]cpuShare, len(cumFunctions))
	for i, f := range cumFunctions {
		cum[i] = cpuShare{name: f}
	}
	for _, s := range stacks {
		total += s.d
		for i, g := range cpuGroups {
			if g.match(s) {
				groups[i].d += s.d
				break
			}
		}
		for i, f := range cumFunctions {
			if s.has(f) {
				cum[i].d += s.d
			}
		}
	}
	return groups, cum, total
}

// printCPU prints the groups, each area's total, and the cumulative shares
// of the functions the profile has.
func printCPU(w io.Writer, groups, cum []cpuShare, total time.Duration) {
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(total) }
	fmt.Fprintf(w, "| area | what | share of the process's CPU | CPU time |\n|---|---|---|---|\n")
	areas := map[string]time.Duration{}
	var order []string
	for _, g := range groups {
		if _, seen := areas[g.area]; !seen {
			order = append(order, g.area)
		}
		areas[g.area] += g.d
		if g.d > 0 {
			fmt.Fprintf(w, "| %s | %s | %.1f%% | %.2f s |\n", g.area, g.name, pct(g.d), g.d.Seconds())
		}
	}
	for _, a := range order {
		fmt.Fprintf(w, "| **%s** | all | **%.1f%%** | %.2f s |\n", a, pct(areas[a]), areas[a].Seconds())
	}
	fmt.Fprintf(w, "\nTotal %.2f s sampled.\n\n| function (cumulative: in its stack) | share |\n|---|---|\n", total.Seconds())
	for _, c := range cum {
		if c.d > 0 {
			fmt.Fprintf(w, "| %s | %.1f%% |\n", c.name, pct(c.d))
		}
	}
}
