package compress

import (
	"io"
	"sync"

	"github.com/valyala/fasthttp"
)

// A Detacher is a response body stream that can be taken out of its
// response unclosed, so that Response can compress it as it streams:
// fasthttp closes the body stream that SetBodyStream replaces, and a
// closed stream cannot be read on. The reverse proxy's streamed answers
// are Detachers (closing one gives its connection back to the pool, or
// closes it); Detachable makes a handler's own stream one.
type Detacher interface {
	// Detach hands the stream over: from the call on, the stream's own
	// Close and CloseWithError do nothing, and the stream returned reads
	// the same body; closing it (once) closes the body.
	Detach() fasthttp.ReadCloserWithError
}

// Detachable wraps r, a handler's body stream, so that Response may
// compress it as it streams:
//
//	ctx.SetBodyStream(compress.Detachable(fasthttp.NewStreamReader(events)), -1)
//
// r is closed as fasthttp closes a body stream: Close if it has one,
// CloseWithError (with the error that ended the response's write) if it
// has one.
func Detachable(r io.Reader) io.Reader { return &detachable{r: r} }

type detachable struct {
	r        io.Reader
	detached bool
}

func (d *detachable) Read(p []byte) (int, error) { return d.r.Read(p) }

func (d *detachable) CloseWithError(err error) error {
	if d.detached {
		return nil
	}
	return closeBody(d.r, err)
}

func (d *detachable) Detach() fasthttp.ReadCloserWithError {
	d.detached = true
	return (*detached)(d)
}

// detached is a detachable handed over: its close is the real one.
type detached detachable

func (d *detached) Read(p []byte) (int, error)     { return d.r.Read(p) }
func (d *detached) CloseWithError(err error) error { return closeBody(d.r, err) }

var (
	_ Detacher                     = (*detachable)(nil)
	_ fasthttp.ReadCloserWithError = (*detachable)(nil)
)

// closeBody closes a body stream as fasthttp does.
func closeBody(r io.Reader, err error) error {
	var cerr error
	if c, ok := r.(io.Closer); ok {
		cerr = c.Close()
	}
	if c, ok := r.(fasthttp.ReadCloserWithError); ok {
		if e := c.CloseWithError(err); cerr == nil {
			cerr = e
		}
	}
	return cerr
}

// stream is a body compressed as it streams. Each Read of the server,
// when what was compressed before has been read, reads the source once
// and returns what that read gave, compressed and flushed: a server-sent
// event reaches the client as soon as its upstream sent it, rather than
// when an encoder's buffer fills. No goroutine runs beside the server's:
// the source is read while its request is being served, as it would be
// uncompressed.
type stream struct {
	src fasthttp.ReadCloserWithError
	c   coding
	enc encoder
	in  []byte // a read of the source
	out sink   // compressed, from off on not yet read
	off int
	end error // how the source ended (io.EOF, or its error), once out is read
}

// streamRead is the most a stream reads of its source at once.
const streamRead = 16 << 10

// maxEmptyReads bounds the reads of the source that give nothing in a
// row, as bufio does.
const maxEmptyReads = 100

var streamPool = sync.Pool{New: func() any { return &stream{in: make([]byte, streamRead)} }}

func newStream(src fasthttp.ReadCloserWithError, c coding) *stream {
	s := streamPool.Get().(*stream)
	s.src, s.c = src, c
	s.enc = acquire(c, streaming, &s.out, -1)
	return s
}

func (s *stream) Read(p []byte) (int, error) {
	for empty := 0; s.off == len(s.out.b); empty++ {
		if s.end != nil {
			return 0, s.end
		}
		if empty == maxEmptyReads {
			return 0, io.ErrNoProgress
		}
		s.out.b, s.off = s.out.b[:0], 0
		n, err := s.src.Read(s.in)
		if n > 0 {
			if _, werr := s.enc.Write(s.in[:n]); werr != nil {
				s.end = werr
				continue
			}
		}
		switch {
		case err == io.EOF:
			s.end = io.EOF
			if cerr := s.enc.Close(); cerr != nil {
				s.end = cerr
			}
		case err != nil:
			s.end = err
		case n > 0:
			s.end = s.enc.Flush()
		}
	}
	n := copy(p, s.out.b[s.off:])
	s.off += n
	return n, nil
}

// CloseWithError closes the source with err, the error that ended the
// write to the client if any (the proxy then drops the upstream
// connection, rather than reuse it), and puts the stream back in its
// pool. fasthttp calls it once, when the response is written or dropped.
func (s *stream) CloseWithError(err error) error {
	cerr := s.src.CloseWithError(err)
	release(s.c, streaming, s.enc)
	s.src, s.enc, s.end, s.off = nil, nil, nil, 0
	s.out.b = s.out.b[:0]
	if cap(s.out.b) > maxPooledBuffer {
		s.out.b = nil
	}
	streamPool.Put(s)
	return cerr
}
