package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastserve/fastserve/bench/internal/wsframe"
)

// conn is one WebSocket and its message buffers, reused for every
// message.
type conn struct {
	nc   net.Conn
	r    *bufio.Reader
	out  []byte // the frame: header, then the masked payload
	hdr  int    // the header's length in out
	want []byte // the payload, unmasked: what the echo must be
	in   []byte // the echo's payload
	seq  uint64
}

// errEcho is an echo that is not the message sent.
var errEcho = errors.New("echo differs from the message")

// dial opens one WebSocket from src (nil: any) and sends one message.
func dial(ctx context.Context, o *options, src *net.TCPAddr) (*conn, error) {
	nd := &net.Dialer{Timeout: o.timeout}
	if src != nil {
		nd.LocalAddr = src // a nil *TCPAddr in the interface is not "none"
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	nc, err := nd.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, err
	}
	if o.tls != nil {
		tc := tls.Client(nc, o.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		nc = tc
	}
	_ = nc.SetDeadline(time.Now().Add(o.timeout))
	c := newConn(nc, o.size)
	if err := wsframe.Handshake(nc, c.r, o.host, o.path); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.exchange(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("first echo: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func newConn(nc net.Conn, size int) *conn {
	h := wsframe.Header{Fin: true, Op: wsframe.OpBinary, Masked: true, Length: int64(size)}
	out := wsframe.AppendHeader(make([]byte, 0, wsframe.MaxHeaderLen+size), h)
	c := &conn{
		nc:   nc,
		r:    bufio.NewReaderSize(nc, max(4096, size+wsframe.MaxHeaderLen)),
		hdr:  len(out),
		out:  out[:len(out)+size],
		want: make([]byte, size),
		in:   make([]byte, size),
	}
	for i := range c.want {
		c.want[i] = byte('a' + i%26)
	}
	return c
}

// exchange sends the next message and reads its echo.
func (c *conn) exchange() error {
	c.seq++
	binary.BigEndian.PutUint64(c.want, c.seq)
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	copy(c.out[c.hdr-4:c.hdr], key[:])
	payload := c.out[c.hdr:]
	copy(payload, c.want)
	wsframe.MaskBytes(key, 0, payload)
	if _, err := c.nc.Write(c.out); err != nil {
		return err
	}
	h, err := wsframe.ReadHeader(c.r, int64(len(c.in)))
	if err != nil {
		return err
	}
	if !h.Fin || h.Op != wsframe.OpBinary || h.Masked || h.Length != int64(len(c.in)) {
		return fmt.Errorf("%w: a frame with fin %v, opcode %d, masked %v, %d bytes", errEcho, h.Fin, h.Op, h.Masked, h.Length)
	}
	if _, err := io.ReadFull(c.r, c.in); err != nil {
		return err
	}
	if !bytes.Equal(c.in, c.want) {
		return fmt.Errorf("%w: message %d came back as %d", errEcho, c.seq, binary.BigEndian.Uint64(c.in))
	}
	return nil
}

// tlsState describes the first connection's TLS, for the report.
func tlsState(c *conn) string {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return "none"
	}
	st := tc.ConnectionState()
	return tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
}

// openAll opens n WebSockets, parallel at a time, within the set-up
// timeout; an error says how many failed and why.
func openAll(o *options, n int) ([]*conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.setupTimeout)
	defer cancel()
	sources := o.sources
	if sources == 0 {
		sources = sourcesNeeded(n)
	}
	var (
		next   atomic.Int64
		mu     sync.Mutex
		conns  = make([]*conn, 0, n)
		errs   = map[string]int{}
		failed int
		wg     sync.WaitGroup
	)
	for range min(o.parallel, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := dial(ctx, o, source(i, sources))
				mu.Lock()
				if err != nil {
					failed++
					errs[err.Error()]++
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(conns) < n {
		if err := ctx.Err(); err != nil {
			errs["not opened in time: "+err.Error()] += n - len(conns) - failed
		}
		closeAll(conns)
		return nil, fmt.Errorf("%d of %d WebSockets to %s failed: %s", n-len(conns), n, o.addr, summarize(errs))
	}
	return conns, nil
}

func closeAll(conns []*conn) {
	for _, c := range conns {
		c.nc.Close()
	}
}

// sourcesNeeded is how many source addresses n connections need so that
// each uses at most three quarters of the local port range.
func sourcesNeeded(n int) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 1
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 1
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return 1
	}
	per := (hi - lo + 1) * 3 / 4
	if per < 1 {
		return 1
	}
	return (n + per - 1) / per
}

// source is the local address of the i-th connection.
func source(i, sources int) *net.TCPAddr {
	if sources <= 1 {
		return nil
	}
	k := 1 + i%sources
	return &net.TCPAddr{IP: net.IPv4(127, byte(k>>16), byte(k>>8), byte(k))}
}

// summarize lists the commonest errors first.
func summarize(errs map[string]int) string {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return errs[keys[a]] > errs[keys[b]] })
	var parts []string
	for i, k := range keys {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d other kinds", len(keys)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("%dx %s", errs[k], k))
	}
	return strings.Join(parts, "; ")
}
