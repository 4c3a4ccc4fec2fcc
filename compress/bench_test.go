package compress_test

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	brrr "github.com/molecule-man/go-brrr"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/compress"
)

// apiBody is n bytes or so of JSON with the repetition of an API's
// answers (field names, enumerations, links): about 7 times smaller in
// gzip 1.
func apiBody(n int) []byte {
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	seed := uint32(1)
	next := func() uint32 { seed = seed*1664525 + 1013904223; return seed >> 8 }
	w := func() string { return words[next()%8] }
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"%s %s","email":"%s.%s@example.com","active":%t,"role":"%s","tags":["%s","%s"],"created":"2026-%02d-%02dT10:00:00Z","links":{"self":"/api/v1/users/%d","team":"/api/v1/teams/%d"}}`,
			1000+i, w(), w(), w(), w(), next()%2 == 0, w(), w(), w(), 1+next()%12, 1+next()%28, 1000+i, next()%10)
	}
	b.WriteString("]")
	return b.Bytes()
}

// cpuPerOp reports the process's CPU time per operation since start
// (cpu-ns/op): what a request costs, whatever else the machine runs.
func cpuPerOp(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkResponse: what Response costs a request: compressing 20 KB of
// JSON whole in each coding, and a response left alone.
func BenchmarkResponse(b *testing.B) {
	body := apiBody(20 << 10)
	cfg := compress.Config{}
	for _, coding := range []string{"br", "zstd", "gzip"} {
		b.Run("coding="+coding+"/body=20KB", func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.Set("Accept-Encoding", "gzip, deflate, "+coding)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			size := 0
			start := cpuTime()
			for b.Loop() {
				ctx.Response.Header.Reset()
				ctx.Response.Header.SetContentType("application/json")
				ctx.Response.SetBody(body)
				cfg.Response(&ctx)
				size = len(ctx.Response.Body())
			}
			if enc := string(ctx.Response.Header.ContentEncoding()); enc != coding {
				b.Fatalf("Content-Encoding %q", enc)
			}
			cpuPerOp(b, start)
			b.ReportMetric(float64(size)/float64(len(body)), "ratio")
		})
	}
	b.Run("eligible=no/body=20KB", func(b *testing.B) { // a PNG
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
		ctx.Response.Header.SetContentType("image/png")
		ctx.Response.SetBody(body)
		b.ReportAllocs()
		for b.Loop() {
			cfg.Response(&ctx)
		}
		if len(ctx.Response.Header.ContentEncoding()) > 0 {
			b.Fatal("compressed")
		}
	})
	b.Run("eligible=no/body=500B", func(b *testing.B) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
		ctx.Response.Header.SetContentType("application/json")
		ctx.Response.SetBody(body[:500])
		b.ReportAllocs()
		for b.Loop() {
			cfg.Response(&ctx)
		}
		if len(ctx.Response.Header.ContentEncoding()) > 0 {
			b.Fatal("compressed")
		}
	})
}

// BenchmarkStream: a stream of 100 events of 200 bytes, each flushed on
// its own, in each coding: per event, the cost and the bytes sent.
func BenchmarkStream(b *testing.B) {
	src := apiBody(20 << 10)[:20000]
	cfg := compress.Config{}
	for _, coding := range []string{"br", "zstd", "gzip"} {
		b.Run("coding="+coding+"/events=100x200B", func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.Set("Accept-Encoding", coding)
			buf := make([]byte, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			sent := 0
			start := cpuTime()
			for b.Loop() {
				ctx.Response.Header.Reset()
				ctx.Response.Header.SetContentType("text/event-stream")
				ctx.Response.SetBodyStream(compress.Detachable(&events{src: src, size: 200}), -1)
				cfg.Response(&ctx)
				r := ctx.Response.BodyStream()
				sent = 0
				for {
					n, err := r.Read(buf)
					sent += n
					if err != nil {
						break
					}
				}
				_ = ctx.Response.CloseBodyStream()
			}
			cpuPerOp(b, start)
			b.ReportMetric(float64(sent)/float64(len(src)), "ratio")
		})
	}
}

// events reads src size bytes at a time, as an event stream arrives.
type events struct {
	src  []byte
	size int
}

func (e *events) Read(p []byte) (int, error) {
	if len(e.src) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), e.size)], e.src)
	e.src = e.src[n:]
	return n, nil
}

// BenchmarkLevels: each coding's levels on 20 KB of JSON, compressed
// whole and in 200-byte pieces each flushed (as a stream of events is):
// the figures the package's levels were chosen by (docs/performance.md).
func BenchmarkLevels(b *testing.B) {
	src := apiBody(20 << 10)
	type flusher interface {
		io.WriteCloser
		Flush() error
	}
	run := func(b *testing.B, piece int, reset func(io.Writer), w flusher) {
		var out bytes.Buffer
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		start := cpuTime()
		for b.Loop() {
			out.Reset()
			reset(&out)
			for rest := src; len(rest) > 0; {
				n := min(len(rest), piece)
				_, _ = w.Write(rest[:n])
				if n < len(src) {
					_ = w.Flush()
				}
				rest = rest[n:]
			}
			_ = w.Close()
		}
		cpuPerOp(b, start)
		b.ReportMetric(float64(out.Len())/float64(len(src)), "ratio")
	}
	for _, piece := range []int{len(src), 200} {
		pieces := "whole"
		if piece < len(src) {
			pieces = "flush=200B"
		}
		for _, level := range []int{0, 1, 2, 3, 4, 5} {
			b.Run("coding=br/level="+strconv.Itoa(level)+"/"+pieces, func(b *testing.B) {
				w, _ := brrr.NewWriterOptions(nil, level, brrr.WriterOptions{LGWin: 18})
				run(b, piece, w.Reset, w)
			})
		}
		for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault} {
			b.Run("coding=zstd/level="+level.String()+"/"+pieces, func(b *testing.B) {
				w, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
					zstd.WithWindowSize(256<<10), zstd.WithLowerEncoderMem(true))
				run(b, piece, w.Reset, w)
			})
		}
		for _, level := range []int{1, 2, 3, 4, 5, 6} {
			b.Run("coding=gzip/level="+strconv.Itoa(level)+"/"+pieces, func(b *testing.B) {
				w, _ := gzip.NewWriterLevel(nil, level)
				run(b, piece, w.Reset, w)
			})
		}
	}
}
