package tune_test

import (
	"io"
	"net"
	"testing"

	"github.com/fastserve/fastserve/tune"
)

// BenchmarkAccept measures what the per-connection options cost: whole
// loopback connections (connect, one byte each way, close) per second
// through a plain net.Listen and through tune.Listen.
func BenchmarkAccept(b *testing.B) {
	for _, bc := range []struct {
		name   string
		listen func() (net.Listener, error)
	}{
		{"listener=net", func() (net.Listener, error) { return net.Listen("tcp4", "127.0.0.1:0") }},
		{"listener=tune-zero", func() (net.Listener, error) { return tune.Listen("tcp4", "127.0.0.1:0", tune.Options{}) }},
		{"listener=tune-default", func() (net.Listener, error) { return tune.Listen("tcp4", "127.0.0.1:0", tune.Default()) }},
		// Default without deferred accept: the per-connection options alone.
		{"listener=tune-default-nodefer", func() (net.Listener, error) {
			o := tune.Default()
			o.DeferAccept = false
			return tune.Listen("tcp4", "127.0.0.1:0", o)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ln, err := bc.listen()
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				buf := make([]byte, 1)
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					if _, err := io.ReadFull(c, buf); err == nil {
						c.Write(buf)
					}
					c.Close()
				}
			}()
			addr := ln.Addr().String()
			b.ReportAllocs()
			b.ResetTimer()
			buf := make([]byte, 1)
			for b.Loop() {
				c, err := net.Dial("tcp4", addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				c.(*net.TCPConn).SetLinger(0) // no TIME_WAIT to run out of ports
				c.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}
