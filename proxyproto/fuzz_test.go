package proxyproto

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"
)

// segments reads b at most n bytes a time: a header split across TCP
// segments, as a socket delivers it.
type segments struct {
	b []byte
	n int
}

func (s *segments) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.n)], s.b)
	s.b = s.b[n:]
	return n, nil
}

// parseSegmented reads a header from in, delivered seg bytes a time, and
// returns it with every byte after it (those TLS would read next).
func parseSegmented(in []byte, seg int) (*proxyproto.Header, []byte, error) {
	br := bufio.NewReaderSize(&segments{b: in, n: seg}, headerBufferSize)
	h, err := readHeader(br)
	if err != nil {
		return nil, nil, err
	}
	rest, _ := io.ReadAll(br)
	return h, rest, nil
}

// FuzzProxyHeader: however the bytes are split into segments, readHeader
// reads the same header, or fails, as from one segment, and leaves the
// same bytes after it: nothing of the ClientHello that follows is lost.
func FuzzProxyHeader(f *testing.F) {
	tcp := func(ip string, port int) *net.TCPAddr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	for _, h := range []*proxyproto.Header{
		proxyproto.HeaderProxyFromAddrs(1, tcp("203.0.113.7", 41000), tcp("198.51.100.1", 443)),
		proxyproto.HeaderProxyFromAddrs(1, tcp("2001:db8::7", 41000), tcp("2001:db8::1", 443)),
		proxyproto.HeaderProxyFromAddrs(2, tcp("203.0.113.7", 41000), tcp("198.51.100.1", 443)),
		proxyproto.HeaderProxyFromAddrs(2, tcp("2001:db8::7", 41000), tcp("2001:db8::1", 443)),
		{Version: 1, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC},
		{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC},
	} {
		b, err := h.Format()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(b, "\x16\x03\x01\x02\x00client hello"...), uint8(1))
		f.Add(b, uint8(7))
	}
	withTLV := proxyproto.HeaderProxyFromAddrs(2, tcp("203.0.113.7", 41000), tcp("198.51.100.1", 443))
	if err := withTLV.SetTLVs([]proxyproto.TLV{{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")}}); err != nil {
		f.Fatal(err)
	}
	b, err := withTLV.Format()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append(b, "\x16\x03\x01"...), uint8(3))
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), uint8(2))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint8(1))

	f.Fuzz(func(t *testing.T, in []byte, seg uint8) {
		// Longer inputs add no path through the parser (a v2 length is
		// read as two bytes whatever follows) and make the fuzzer's
		// minimization quadratic in their length.
		if len(in) > 1024 {
			return
		}
		whole, wholeRest, wholeErr := parseSegmented(in, len(in)+1)
		split, splitRest, splitErr := parseSegmented(in, int(seg%32)+1)
		if (wholeErr == nil) != (splitErr == nil) {
			t.Fatalf("in one segment: %v; in segments of %d bytes: %v", wholeErr, seg%32+1, splitErr)
		}
		if wholeErr != nil {
			return
		}
		if !whole.EqualsTo(split) {
			t.Fatalf("in one segment: %+v; in segments of %d bytes: %+v", whole, seg%32+1, split)
		}
		if !bytes.Equal(wholeRest, splitRest) {
			t.Fatalf("after the header, in one segment: %q; in segments of %d bytes: %q", wholeRest, seg%32+1, splitRest)
		}
	})
}
