// Command wsecho is the WebSocket echo server behind the proxies that
// bench/peers/websocket.sh compares: plain ws:// on one port, every data
// frame sent back as it came (same opcode and FIN, unmasked), pings
// answered with pongs, a close answered with a close. A plain HTTP request
// (the proxies' health checks) gets 200 "wsecho" on a keep-alive
// connection.
//
// It is built to cost little, since it shares a CPU with the load client:
// one goroutine per connection, one buffered read and one write per
// message, no allocation per message (bench/internal/wsframe). It echoes
// frame by frame, so fragmented messages come back fragmented.
//
//	wsecho -addr 127.0.0.1:19502 [-max-frame 1048576]
//
// It prints "listening on ADDR" once it accepts connections, raises its
// own RLIMIT_NOFILE to the hard limit, and runs until SIGINT or SIGTERM.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fastserve/fastserve/bench/internal/wsframe"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19502", "host:port to listen on (plain HTTP and ws://)")
	maxFrame := flag.Int64("max-frame", 1<<20, "longest frame payload echoed, in bytes; a longer one closes the connection with 1009")
	flag.Parse()
	if *maxFrame < 125 {
		fail(fmt.Errorf("-max-frame must be >= 125, got %d", *maxFrame))
	}
	fmt.Println(raiseFileLimit())
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fail(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: wait, do not stop serving.
			fmt.Fprintln(os.Stderr, "wsecho: accept:", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serve(c, *maxFrame)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wsecho:", err)
	os.Exit(1)
}

const healthAnswer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nwsecho\n"

// serve answers HTTP requests on c until one asks for a WebSocket, then
// echoes its frames.
func serve(c net.Conn, maxFrame int64) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		if wsframe.IsUpgrade(req) {
			if wsframe.Accept(c, req) != nil {
				return
			}
			echo(c, r, maxFrame)
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
		if _, err := io.WriteString(c, healthAnswer); err != nil || req.Close {
			return
		}
	}
}

// echo sends every frame read from r back on c until a close, an error or
// a frame over maxFrame.
func echo(c net.Conn, r *bufio.Reader, maxFrame int64) {
	buf := make([]byte, wsframe.MaxHeaderLen+512)
	for {
		h, err := wsframe.ReadHeader(r, maxFrame)
		if err != nil {
			if errors.Is(err, wsframe.ErrTooLong) {
				_, _ = c.Write([]byte{0x88, 0x02, 0x03, 0xf1}) // close, 1009: message too big
			}
			return
		}
		if need := wsframe.MaxHeaderLen + int(h.Length); need > cap(buf) {
			buf = make([]byte, need)
		}
		masked, key, op := h.Masked, h.Mask, h.Op
		if op == wsframe.OpPing {
			h.Op = wsframe.OpPong
		}
		h.Masked = false
		out := wsframe.AppendHeader(buf[:0], h)
		payload := out[len(out) : len(out)+int(h.Length)]
		if _, err := io.ReadFull(r, payload); err != nil {
			return
		}
		if masked {
			wsframe.MaskBytes(key, 0, payload)
		}
		if op == wsframe.OpPong {
			continue // unsolicited: nothing to answer
		}
		if _, err := c.Write(out[:len(out)+int(h.Length)]); err != nil {
			return
		}
		if h.Op == wsframe.OpClose {
			return
		}
	}
}
