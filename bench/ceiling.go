package bench

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"sync"
)

// Ceiling is the cheapest HTTP/1.1 keep-alive responder Go's crypto/tls
// allows, for servers to be measured against: it parses no HTTP, only
// finds each request's line and its blank line, and answers with a
// prebuilt response, all answers to one read in one write.
type Ceiling struct {
	responses map[string][]byte // by path, without its "/"
	fallback  []byte

	mu   sync.Mutex
	open map[net.Conn]struct{}
}

// NewCeiling returns a Ceiling answering GET /NAME with bodies[NAME] and
// any other path with fallback's body, as text/plain.
func NewCeiling(bodies map[string][]byte, fallback []byte) *Ceiling {
	c := &Ceiling{responses: map[string][]byte{}, fallback: response(fallback), open: map[net.Conn]struct{}{}}
	for name, b := range bodies {
		c.responses[name] = response(b)
	}
	return c
}

func response(body []byte) []byte {
	return []byte("HTTP/1.1 200 OK\r\nServer: ceiling\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
}

// Serve accepts connections on ln (a TLS listener) and serves each on a
// goroutine of its own until ln is closed; it returns Accept's error.
func (c *Ceiling) Serve(ln net.Listener) error {
	for {
		cn, err := ln.Accept()
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.open[cn] = struct{}{}
		c.mu.Unlock()
		go func() {
			c.serve(cn)
			c.mu.Lock()
			delete(c.open, cn)
			c.mu.Unlock()
		}()
	}
}

// CloseConns closes the connections Serve has open.
func (c *Ceiling) CloseConns() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for cn := range c.open {
		cn.Close()
	}
}

func (c *Ceiling) serve(cn net.Conn) {
	defer cn.Close()
	br := bufio.NewReaderSize(cn, 16<<10)
	var out, resp []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if resp == nil {
			// The request line: GET /13B HTTP/1.1
			if i := bytes.IndexByte(line, '/'); i >= 0 {
				if j := bytes.IndexByte(line[i:], ' '); j > 1 {
					resp = c.responses[string(line[i+1:i+j])]
				}
			}
			if resp == nil {
				resp = c.fallback
			}
			continue
		}
		if len(line) > 2 {
			continue // a header
		}
		out = append(out, resp...)
		resp = nil
		if br.Buffered() == 0 { // every pipelined request read: answer them at once
			if _, err := cn.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}
