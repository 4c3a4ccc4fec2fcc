package proxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/proxy"
)

// lingeringUpstream answers /fast at once. To /slow it sends head (if not
// empty) and then waits up to 5 s for the proxy to close the connection,
// reporting on closed how long that took (or 5 s and a timeout error),
// before it answers.
type lingeringUpstream struct {
	ln     net.Listener
	head   string
	got    chan struct{}     // a /slow request arrived
	closed chan closedResult // how its connection ended
	wg     sync.WaitGroup
}

type closedResult struct {
	after time.Duration
	err   error
}

func newLingeringUpstream(t *testing.T, head string) *lingeringUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &lingeringUpstream{ln: ln, head: head, got: make(chan struct{}, 4), closed: make(chan closedResult, 4)}
	var conns sync.Map
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				u.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		u.wg.Wait()
	})
	return u
}

func (u *lingeringUpstream) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for range 100 {
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			return
		}
		if string(req.URI().Path()) != "/slow" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfast")
			continue
		}
		u.got <- struct{}{}
		io.WriteString(c, u.head)
		start := time.Now()
		c.SetReadDeadline(start.Add(5 * time.Second))
		_, err := br.ReadByte()
		u.closed <- closedResult{time.Since(start), err}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
		}
		return
	}
}

// TestProxyClientGoneCancelsUpstream: a client that closes its connection
// while its request waits for the upstream's answer (or for the rest of
// a streamed body) cancels it: the upstream sees its connection closed
// within 2 s, not when it answers after 5 s, and the connection's slot is
// free: with MaxConns 1, another client's request is answered at once.
func TestProxyClientGoneCancelsUpstream(t *testing.T) {
	for _, tc := range []struct{ name, head string }{
		{"waiting for the head", ""},
		{"streaming the body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newLingeringUpstream(t, tc.head)
			p := newProxy(t, proxy.Config{
				Routes:   []proxy.Route{{Path: "/", Upstreams: []string{"http://" + up.ln.Addr().String()}}},
				MaxConns: 1,
				// A request that waits for the one connection gets 503 after 1 s.
				ConnectTimeout: time.Second,
			})
			ts := startProxy(t, p)

			c := ts.Dial(t)
			require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
			_, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
			require.NoError(t, err)
			select {
			case <-up.got:
			case <-time.After(5 * time.Second):
				require.FailNow(t, "the request did not reach the upstream")
			}
			if tc.head != "" {
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				require.NoError(t, err)
				first := make([]byte, 5)
				_, err = io.ReadFull(resp.Body, first)
				require.NoError(t, err)
				require.Equal(t, "first", string(first), "the body streams")
			}
			require.NoError(t, c.Close())

			select {
			case r := <-up.closed:
				assert.Less(t, r.after, 2*time.Second, "the upstream's connection closed after %v (%v)", r.after, r.err)
				assert.False(t, errors.Is(r.err, os.ErrDeadlineExceeded), "the upstream's read: %v", r.err)
			case <-time.After(6 * time.Second):
				require.FailNow(t, "the upstream saw nothing")
			}
			_, resp, body := proxyExchange(t, ts, "GET /fast HTTP/1.1\r\nHost: localhost\r\n\r\n")
			assert.Equal(t, http.StatusOK, resp.StatusCode, "the slot is free")
			assert.Equal(t, "fast", body)
		})
	}
}
