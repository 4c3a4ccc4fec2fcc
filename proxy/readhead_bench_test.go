package proxy

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkReadHead measures what readHead's checks (peekHead, validStatus,
// hasContentLength) add to fasthttp's own read of a response head:
// parse=fasthttp is ResponseHeader.Read alone, parse=readHead the proxy's.
func BenchmarkReadHead(b *testing.B) {
	small := "HTTP/1.1 200 OK\r\nServer: app\r\nDate: Wed, 02 Dec 2026 13:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world!"
	large := "HTTP/1.1 200 OK\r\nServer: app\r\nDate: Wed, 02 Dec 2026 13:00:00 GMT\r\nContent-Type: text/html; charset=utf-8\r\n" +
		strings.Repeat("Set-Cookie: session=0123456789abcdef0123456789abcdef; Path=/; HttpOnly; Secure\r\n", 12) +
		"Cache-Control: no-store\r\nContent-Length: 13\r\n\r\nhello, world!"
	for _, hc := range []struct{ name, head string }{{"200B", small}, {"1.3KiB", large}} {
		for _, parse := range []string{"fasthttp", "readHead"} {
			b.Run("head="+hc.name+"/parse="+parse, func(b *testing.B) {
				data := []byte(hc.head)
				r := bytes.NewReader(data)
				br := bufio.NewReaderSize(r, 4096)
				var h fasthttp.ResponseHeader
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					r.Reset(data)
					br.Reset(r)
					h.Reset()
					h.DisableNormalizing()
					var err error
					if parse == "fasthttp" {
						err = h.Read(br)
					} else {
						err = readHead(&h, br, 4<<10, false)
					}
					if err != nil || h.StatusCode() != 200 {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
