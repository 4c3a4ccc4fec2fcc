package accesslog

import (
	"encoding/json"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	flushEvery = 200 * time.Millisecond
	backlog    = 1 << 20
)

// A Log formats a line per request into a buffer, under a lock held only
// for the formatting; a background writer (Run) swaps the buffer out and
// writes it every 200 ms, so a slow disk never blocks a request. Past
// 1 MiB of unwritten lines, lines are dropped and counted (Dropped).
type Log struct {
	w      io.Writer
	format []appender

	mu      sync.Mutex
	buf     []byte
	dropped atomic.Uint64

	stop chan struct{}
	done chan struct{}
}

// New returns a Log that writes to w in format f (the zero Format is
// Combined). Run must run for lines to be written.
func New(w io.Writer, f Format) *Log {
	if f.ops == nil {
		f = Combined
	}
	return &Log{
		w:      w,
		format: f.ops,
		buf:    make([]byte, 0, 64<<10),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// Run writes the buffer out every 200 ms until Close.
func (l *Log) Run() {
	defer close(l.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	spare := make([]byte, 0, 64<<10)
	for {
		select {
		case <-t.C:
		case <-l.stop:
			l.flush(spare)
			return
		}
		spare = l.flush(spare)
	}
}

// flush swaps spare in for the buffer, writes what it held, and returns
// it emptied, to be the next spare.
func (l *Log) flush(spare []byte) []byte {
	l.mu.Lock()
	full := l.buf
	l.buf = spare
	l.mu.Unlock()
	if len(full) > 0 {
		_, _ = l.w.Write(full)
	}
	return full[:0]
}

// Close writes what is buffered and stops Run.
func (l *Log) Close() {
	close(l.stop)
	<-l.done
}

// Add appends the line of the request in ctx, answered at now. It
// allocates nothing (a value that needs JSON escaping excepted).
func (l *Log) Add(ctx *fasthttp.RequestCtx, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > backlog {
		l.dropped.Add(1)
		return
	}
	for _, op := range l.format {
		l.buf = op(l.buf, ctx, now)
	}
}

// appendRemote appends the client's IP address without allocating.
func appendRemote(b []byte, ctx *fasthttp.RequestCtx) []byte {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap().AppendTo(b)
	}
	return append(b, ctx.RemoteAddr().String()...)
}

// appendLength appends the response body's length: its Content-Length
// when it is streamed (Response.Body would read a streamed body, such as a
// static file, into memory), or unknown without one.
func appendLength(b []byte, ctx *fasthttp.RequestCtx, unknown string) []byte {
	if !ctx.Response.IsBodyStream() {
		return strconv.AppendInt(b, int64(len(ctx.Response.Body())), 10)
	}
	if n := ctx.Response.Header.ContentLength(); n >= 0 {
		return strconv.AppendInt(b, int64(n), 10)
	}
	return append(b, unknown...)
}

// appendQuoted appends s with the bytes that would break a log line or a
// quoted field escaped as nginx does (\xHH).
func appendQuoted[T string | []byte](b []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		b = appendEscaped(b, s[i])
	}
	return b
}

// appendEscaped appends c, or \xHH if c is a control byte, ", \, or from
// 0x7f.
func appendEscaped(b []byte, c byte) []byte {
	const hex = "0123456789ABCDEF"
	if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
		return append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
	}
	return append(b, c)
}

func appendJSONLine(b []byte, ctx *fasthttp.RequestCtx, now time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = began(ctx, now).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","remote":"`...)
	b = appendRemote(b, ctx)
	b = append(b, `","method":`...)
	b = appendJSONString(b, ctx.Method())
	b = append(b, `,"uri":`...)
	b = appendJSONString(b, ctx.RequestURI())
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, ctx.Request.Header.Protocol())
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(ctx.Response.StatusCode()), 10)
	b = append(b, `,"bytes":`...)
	b = appendLength(b, ctx, "null")
	b = append(b, `,"duration_s":`...)
	b = strconv.AppendFloat(b, now.Sub(began(ctx, now)).Seconds(), 'f', 6, 64)
	b = append(b, `,"referer":`...)
	b = appendJSONString(b, ctx.Referer())
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, ctx.UserAgent())
	if id := ctx.Request.Header.Peek("X-Request-ID"); len(id) > 0 {
		b = append(b, `,"request_id":`...)
		b = appendJSONString(b, id)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string. Request bytes are not
// always UTF-8; json.Marshal's rules (invalid bytes become U+FFFD) apply,
// on the slow path only.
func appendJSONString(b, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			q, _ := json.Marshal(string(s))
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Dropped is how many lines were dropped because the writer fell behind.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// began is when ctx's request began: fasthttp's time for it, or now for
// a request answered before fasthttp set one (a request the server
// refused while reading it: 400, 408, 413, 431), which would otherwise be
// logged in the year 1 with a duration of 292 years.
func began(ctx *fasthttp.RequestCtx, now time.Time) time.Time {
	if t := ctx.Time(); !t.IsZero() {
		return t
	}
	return now
}
