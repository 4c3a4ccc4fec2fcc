package proxyproto_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/fastserve/fastserve/proxyproto"
)

// Behind a balancer at 127.0.0.0/8 that sends PROXY v1: read its header
// before TLS, then hand the connection to TLS.
func ExampleConn() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() { // the balancer
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "PROXY TCP4 203.0.113.7 198.51.100.1 41000 443\r\n")
		time.Sleep(100 * time.Millisecond)
	}()

	policy := proxyproto.Policy{From: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	tc, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	defer tc.Close()
	peer := tc.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
	c := proxyproto.NewConn(tc.(*net.TCPConn), policy.Trusts(peer))
	if c.Trusted() {
		if err := c.ReadHeader(3 * time.Second); err != nil {
			log.Fatal(err) // ErrMissing, ErrInvalid or ErrTimeout: reset it
		}
	}
	fmt.Println("client:", c.RemoteAddr())
	_ = tls.Server(c, &tls.Config{}) // TLS reads what followed the header
	// Output: client: 203.0.113.7:41000
}
