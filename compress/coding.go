package compress

import (
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	brrr "github.com/molecule-man/go-brrr"
)

// A coding is a content coding the package makes, or identity (none).
type coding uint8

const (
	identity coding = iota
	brotli
	zstandard
	gzipped
	codings
)

// names are the codings' tokens in Accept-Encoding and Content-Encoding.
var names = [codings]string{"identity", "br", "zstd", "gzip"}

func (c coding) String() string { return names[c] }

// The levels are fast ones, each chosen by BenchmarkLevels (the figures
// are in docs/performance.md); the windows bound the memory an encoder
// holds, while it compresses a body and while it sits in its pool.
const (
	// brotliLevel: 2 is brotli's fastest level that keeps its window
	// across flushes (0 and 1 compress each flushed piece on its own,
	// which a stream of small events defeats).
	brotliLevel  = 2
	brotliWindow = 18 // log2 bytes: 256 KiB
	zstdLevel    = zstd.SpeedFastest
	zstdWindow   = 256 << 10
	gzipLevel    = 1
)

// encoder is what each coding's writer does.
type encoder interface {
	Write(p []byte) (int, error)
	Flush() error // sends what was written so far, keeping the window
	Close() error // ends the coded stream
}

// encoders are the idle encoders of each coding.
var encoders [codings]sync.Pool

// acquire is an encoder of c writing to dst; size is the body's length if
// known, else -1.
func acquire(c coding, dst io.Writer, size int) encoder {
	switch c {
	case brotli:
		w, _ := encoders[c].Get().(*brrr.Writer)
		if w == nil {
			// The level and window are valid: no error.
			w, _ = brrr.NewWriterOptions(dst, brotliLevel, brrr.WriterOptions{LGWin: brotliWindow})
		}
		// Reset also keeps Close from releasing the encoder's state. No size
		// hint: one sets tables of another size, made again at each change.
		w.Reset(dst)
		return w
	case zstandard:
		w, _ := encoders[c].Get().(*zstd.Encoder)
		if w == nil {
			w, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevel), zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
		}
		w.ResetContentSize(dst, int64(size))
		return w
	default:
		w, _ := encoders[c].Get().(*gzip.Writer)
		if w == nil {
			w, _ = gzip.NewWriterLevel(dst, gzipLevel)
		}
		w.Reset(dst)
		return w
	}
}

// release puts e, an encoder of c, back in its pool, holding no writer.
func release(c coding, e encoder) {
	switch w := e.(type) {
	case *brrr.Writer:
		w.Reset(nil)
	case *zstd.Encoder:
		w.Reset(nil)
	case *gzip.Writer:
		w.Reset(nil)
	}
	encoders[c].Put(e)
}

// sink collects what an encoder writes.
type sink struct{ b []byte }

func (s *sink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// maxPooledBuffer bounds the buffers kept for the next body: a larger one
// goes to the garbage collector.
const maxPooledBuffer = 1 << 20
