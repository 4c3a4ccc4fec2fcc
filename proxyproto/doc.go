// Package proxyproto reads the PROXY protocol header (v1 or v2) that a
// TCP load balancer (HAProxy's send-proxy, AWS NLB, ...) writes before
// its client's first byte, so that a server behind it learns the client's
// address. Parsing is github.com/pires/go-proxyproto's; this package adds
// what a TLS server needs around it:
//
//   - Policy: which peers are balancers that must send a header, as
//     HAProxy's accept-proxy; any other peer is a direct client, refused
//     if it sends one (it would choose the address it is logged by).
//   - Conn: the socket under TLS, read on the connection's own goroutine,
//     never the accept loop's, under a timeout of its own; the bytes that
//     arrive with the header wait in a pooled buffer for TLS's first read,
//     and an established connection holds no buffer.
//   - Typed refusals (ErrMissing, ErrInvalid, ErrUntrusted, ErrTimeout),
//     for the server to decide what each costs: a reset, a counter, a log
//     line.
//
// A header split across TCP segments is read whole, as the protocol's
// specification recommends (go-proxyproto's own Conn refuses a v1 line
// that is not whole in one read).
package proxyproto
