// Package wsframe is the little of WebSocket (RFC 6455) that the benchmark
// tools need: the opening handshake from both ends (Dial's client side,
// Accept's server side) and frame headers read and written, with the
// masking a client applies. bench/wsload and bench/wsecho are built on it,
// so that the load client and the echo server spend as little CPU as a
// benchmark peer should (a prebuilt frame, one write and one buffered read
// per message, no allocation per message) and the module needs no
// WebSocket library outside its tests.
//
// It is not a WebSocket implementation: it does not reassemble fragmented
// messages, check UTF-8 in text frames or negotiate extensions or
// subprotocols. Its tests check it against github.com/gorilla/websocket.
package wsframe
