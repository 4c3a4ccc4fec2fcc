//go:build !race

package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestStripAllocs: deleting a browser's hop-by-hop lines, and an
// upstream's, allocates nothing (no name repeats: no header read anew).
func TestStripAllocs(t *testing.T) {
	const req = "GET /app/page?x=1 HTTP/1.1\r\nHost: www.example.com\r\nConnection: keep-alive\r\n" +
		"sec-ch-ua: \"Chromium\";v=\"124\"\r\nsec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\nUpgrade-Insecure-Requests: 1\r\n" +
		"User-Agent: Mozilla/5.0\r\nAccept: text/html\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\n" +
		"Sec-Fetch-Dest: document\r\nReferer: https://www.example.com/app/\r\nAccept-Encoding: gzip, br\r\nAccept-Language: en-US\r\nCookie: s=1; t=2\r\n\r\n"
	const resp = "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: d\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n" +
		"Keep-Alive: timeout=5\r\nVary: Accept-Encoding\r\nCache-Control: private\r\nSet-Cookie: a=1\r\nLink: <a>\r\n\r\n"
	var src fasthttp.RequestHeader
	if err := src.Read(bufio.NewReader(strings.NewReader(req))); err != nil {
		t.Fatal(err)
	}
	var rsrc fasthttp.ResponseHeader
	rsrc.DisableNormalizing()
	if err := rsrc.Read(bufio.NewReader(strings.NewReader(resp))); err != nil {
		t.Fatal(err)
	}
	var h fasthttp.RequestHeader
	var rh fasthttp.ResponseHeader
	var buf []byte
	n := testing.AllocsPerRun(200, func() {
		src.CopyTo(&h)
		_, buf, _ = stripRequest(&h, buf[:0])
		rsrc.CopyTo(&rh)
		buf = stripResponse(&rh, buf[:0])
	})
	if n != 0 {
		t.Errorf("%v allocations", n)
	}
}
