package proxy

import (
	"io"

	"github.com/valyala/fasthttp"
)

// Detach hands a streamed answer's body over to a wrapper that streams
// it on (package compress, which compresses it as it streams): fasthttp
// closes the body stream that SetBodyStream replaces, so from the call on
// b's own CloseWithError does nothing (b counts as closed), and the
// stream returned reads the body and closes it, once, as b's would have:
// the connection goes back to the pool if the body was read to its end
// and the write to the client did not fail, else it is closed.
func (b *upstreamBody) Detach() fasthttp.ReadCloserWithError {
	b.closed.Store(true)
	return (*detachedBody)(b)
}

// detachedBody is an upstreamBody handed over by Detach.
type detachedBody upstreamBody

func (d *detachedBody) Read(p []byte) (int, error) {
	b := (*upstreamBody)(d)
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.fullyRead = true
	}
	return n, err
}

func (d *detachedBody) CloseWithError(err error) error {
	b := (*upstreamBody)(d)
	b.closed.Store(false)
	return b.CloseWithError(err)
}
