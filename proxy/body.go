package proxy

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/valyala/fasthttp"
)

// A request body is read whole from the client before an upstream is
// picked (Config.BufferBodyBytes): into the scratch's memory buffer, and
// past it into a temporary file (bodyFile), whose reader then goes
// upstream with the body's length.

// bodyFile is a request body spooled to an unlinked temporary file.
type bodyFile struct {
	f    *os.File
	size int64
	r    io.SectionReader // what goes upstream: no Close, so fasthttp leaves f open for a retry
}

// spoolError is a failure of the temporary file, not of the client: the
// request gets 500.
type spoolError struct{ err error }

func (e *spoolError) Error() string { return "request body temporary file: " + e.err.Error() }
func (e *spoolError) Unwrap() error { return e.err }

// bufferBody reads the client's body from r whole, size bytes (or, if
// size is negative, a chunked body to its end), and makes it req's body:
// in sc.body up to BufferBodyBytes, else in a temporary file. A read that
// fails is the client's error, returned as it is; a failure of the file
// is a *spoolError.
func (p *Proxy) bufferBody(r io.Reader, req *fasthttp.Request, sc *proxyScratch, size int) error {
	limit := p.cfg.BufferBodyBytes
	if cap(sc.body) < limit {
		sc.body = make([]byte, limit)
	}
	buf := sc.body[:limit]
	// Not io.ReadFull, which cannot tell the end of a chunked body (EOF)
	// from one cut short (ErrUnexpectedEOF).
	n := 0
	var err error
	for n < len(buf) && err == nil {
		var m int
		m, err = r.Read(buf[n:])
		n += m
	}
	switch {
	case err == nil: // the buffer is full: there is more, or there may be
	case size < 0 && err == io.EOF:
		req.SetBodyRaw(buf[:n]) // a chunked body that fits: it goes with a Content-Length
		return nil
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	default:
		return err
	}

	f, err := openTemp(p.cfg.BodyTempDir)
	if err != nil {
		return &spoolError{err}
	}
	sc.file.f = f
	if _, err := f.Write(buf[:n]); err != nil {
		return &spoolError{err}
	}
	// buf, written out, is the copy's buffer; f is wrapped so that
	// io.CopyBuffer uses it rather than f.ReadFrom's own.
	sc.stream = clientBody{r: r}
	m, err := io.CopyBuffer(struct{ io.Writer }{f}, &sc.stream, buf)
	switch {
	case sc.stream.err != nil:
		return sc.stream.err
	case err != nil:
		return &spoolError{err}
	case size >= 0 && int64(n)+m != int64(size):
		return io.ErrUnexpectedEOF
	}
	sc.file.size = int64(n) + m
	sc.file.rewind(req)
	return nil
}

// rewind makes the file, from its start, req's body, with its length: for
// the first attempt and for a retry (fasthttp drops a body stream once
// sent).
func (b *bodyFile) rewind(req *fasthttp.Request) {
	b.r = *io.NewSectionReader(b.f, 0, b.size)
	req.SetBodyStream(&b.r, int(b.size))
}

// close closes the file, if any, which frees its space.
func (b *bodyFile) close() {
	if b.f != nil {
		b.f.Close()
	}
	*b = bodyFile{}
}

// createUnlinked makes a temporary file in dir with mode 0600 and
// removes its name at once: its space is freed when it is closed, even
// if the process dies first.
func createUnlinked(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "fastserve-body-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// probeTempDir checks that a temporary file can be made in dir.
func probeTempDir(dir string) error {
	if fi, err := os.Stat(dir); err != nil {
		return err
	} else if !fi.IsDir() {
		return &os.PathError{Op: "stat", Path: dir, Err: errors.New("not a directory")}
	}
	f, err := openTemp(dir)
	if err != nil {
		return fmt.Errorf("make a file: %w", err)
	}
	return f.Close()
}
