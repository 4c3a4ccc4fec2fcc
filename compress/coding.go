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

// A mode is how a body is compressed: whole, or as it streams, each read
// of its source flushed on its own. Each has its levels and its pool of
// encoders: a stream holds its encoder for as long as it lasts, a body
// whole only while it is compressed.
type mode uint8

const (
	whole mode = iota
	streaming
	modes
)

// The levels are fast ones, chosen by BenchmarkLevels (its figures are
// in docs/performance.md); the windows bound the memory an encoder holds,
// while it compresses and while it waits in its pool (the libraries'
// default windows make it several times larger).
const (
	// brotliLevel makes a body as small as gzip's level 1, for less CPU.
	// Levels 0 and 1 compress each flushed piece on its own, which a
	// stream of small events defeats: a stream gets level 2, the fastest
	// that keeps its window across flushes.
	brotliLevel       = 1
	brotliStreamLevel = 2
	brotliWindow      = 18 // log2 bytes: 256 KiB

	// zstd's default level costs about what its fastest does, and makes
	// less; a stream gets the fastest, which holds a third of the memory
	// for as long as the stream lasts.
	zstdLevel       = zstd.SpeedDefault
	zstdStreamLevel = zstd.SpeedFastest
	zstdWindow      = 256 << 10

	gzipLevel = 1
)

// encoder is what each coding's writer does.
type encoder interface {
	Write(p []byte) (int, error)
	Flush() error // sends what was written so far, keeping the window
	Close() error // ends the coded stream
}

// encoders are the idle encoders of each mode and coding.
var encoders [modes][codings]sync.Pool

// acquire is an encoder of c for mode m, writing to dst; size is the
// body's length if known, else -1.
func acquire(c coding, m mode, dst io.Writer, size int) encoder {
	pool := &encoders[m][c]
	switch c {
	case brotli:
		w, _ := pool.Get().(*brrr.Writer)
		if w == nil {
			level := brotliLevel
			if m == streaming {
				level = brotliStreamLevel
			}
			// The level and window are valid: no error.
			w, _ = brrr.NewWriterOptions(dst, level, brrr.WriterOptions{LGWin: brotliWindow})
		}
		// Reset also keeps Close from releasing the encoder's state. No size
		// hint: one sets tables of another size, made again at each change.
		w.Reset(dst)
		return w
	case zstandard:
		w, _ := pool.Get().(*zstd.Encoder)
		if w == nil {
			level := zstdLevel
			if m == streaming {
				level = zstdStreamLevel
			}
			w, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
		}
		w.ResetContentSize(dst, int64(size))
		return w
	default:
		w, _ := pool.Get().(*gzip.Writer)
		if w == nil {
			w, _ = gzip.NewWriterLevel(dst, gzipLevel)
		}
		w.Reset(dst)
		return w
	}
}

// release puts e, an encoder of c for mode m, back in its pool, holding
// no writer.
func release(c coding, m mode, e encoder) {
	switch w := e.(type) {
	case *brrr.Writer:
		w.Reset(nil)
	case *zstd.Encoder:
		w.Reset(nil)
	case *gzip.Writer:
		w.Reset(nil)
	}
	encoders[m][c].Put(e)
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
