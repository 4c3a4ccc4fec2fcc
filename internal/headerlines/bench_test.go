package headerlines_test

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/headerlines"
)

// browserHead is a browser's request head: 15 lines, Connection:
// keep-alive among them.
const browserHead = "GET /app/page?x=1 HTTP/1.1\r\nHost: www.example.com\r\nConnection: keep-alive\r\n" +
	"sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n" +
	"sec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\nUpgrade-Insecure-Requests: 1\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
	"Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\n" +
	"Referer: https://www.example.com/app/\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n" +
	"Cookie: session=abc123; theme=dark; _ga=GA1.2.3.4\r\n\r\n"

const browserResp = "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/html; charset=utf-8\r\n" +
	"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nVary: Accept-Encoding\r\n" +
	"Cache-Control: private, no-cache\r\nX-Frame-Options: SAMEORIGIN\r\nX-Content-Type-Options: nosniff\r\n" +
	"Set-Cookie: a=1; Path=/\r\nLink: </app.css>; rel=preload; as=style\r\nStrict-Transport-Security: max-age=31536000\r\n\r\n"

func BenchmarkDelRequest(b *testing.B) {
	ns := names("Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Connection",
		"Proxy-Authenticate", "Proxy-Authorization", "X-Forwarded-For", "Forwarded", "X-Forwarded-Proto", "X-Forwarded-Host", "Expect")
	for _, tc := range []struct{ name, head string }{
		{"browser", browserHead},
		{"browser+dup", strings.Replace(browserHead, "\r\n\r\n", "\r\nAccept: */*\r\n\r\n", 1)},
	} {
		var src fasthttp.RequestHeader
		if err := src.Read(bufio.NewReader(strings.NewReader(tc.head))); err != nil {
			b.Fatal(err)
		}
		var h fasthttp.RequestHeader
		var raw []byte
		b.Run(tc.name+"/fasthttp-Del", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				src.CopyTo(&h)
				h.Del("Connection")
			}
		})
		b.Run(tc.name+"/DelRequest", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				src.CopyTo(&h)
				raw = h.AppendBytes(raw[:0])
				headerlines.DelRequest(&h, raw, ns)
			}
		})
	}
}

func BenchmarkDelResponse(b *testing.B) {
	ns := names("Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Connection",
		"Proxy-Authenticate", "Proxy-Authorization")
	for _, tc := range []struct{ name, head string }{
		{"browser", browserResp},
		{"browser+dup", strings.Replace(browserResp, "\r\n\r\n", "\r\nLink: </app.js>; rel=preload; as=script\r\n\r\n", 1)},
	} {
		var src fasthttp.ResponseHeader
		src.DisableNormalizing()
		if err := src.Read(bufio.NewReader(strings.NewReader(tc.head))); err != nil {
			b.Fatal(err)
		}
		var h fasthttp.ResponseHeader
		b.Run(tc.name+"/fasthttp-Del", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				src.CopyTo(&h)
				h.Del("Connection")
				h.Del("Keep-Alive")
			}
		})
		b.Run(tc.name+"/DelResponse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				src.CopyTo(&h)
				headerlines.DelResponse(&h, ns)
			}
		})
	}
}

// BenchmarkDelHostile: a 14 KiB head (under the server's default bound,
// 16 KiB) of some 1750 Connection tokens and as many lines. DelRequest's
// cost grows with lines times names (Names.index, once a name passes the
// filter); the proxy deletes the first 16 names Connection gives
// (maxConnectionTokens). Uncapped, the 1750 names cost 8.5 ms a request
// here (the code before headerlines: some 22 ms).
func BenchmarkDelHostile(b *testing.B) {
	var conn, lines strings.Builder
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	for i := 0; conn.Len() < 7000; i++ {
		conn.WriteString("t" + string(chars[i%36]) + string(chars[i/36%36]) + ",")
	}
	for i := 0; lines.Len() < 7000; i++ {
		lines.WriteString(string(chars[i%36]) + string(chars[i/36%36]) + ":\r\n")
	}
	for _, dup := range []string{"", "X:1\r\nX:2\r\n"} {
		head := "GET / HTTP/1.1\r\nHost: h\r\nConnection: " + conn.String() + "ta0\r\nta0: 1\r\n" + lines.String() + dup + "\r\n"
		var src fasthttp.RequestHeader
		if err := src.Read(bufio.NewReaderSize(strings.NewReader(head), 1<<16)); err != nil {
			b.Fatal(err)
		}
		ns := names("Connection", "Keep-Alive")
		for _, tok := range strings.Split(conn.String()+"ta0", ",")[:16] { // the proxy's maxConnectionTokens
			ns = ns.Add([]byte(tok))
		}
		var h fasthttp.RequestHeader
		var raw []byte
		b.Run("dup="+map[bool]string{true: "yes", false: "no"}[dup != ""], func(b *testing.B) {
			for b.Loop() {
				src.CopyTo(&h)
				raw = h.AppendBytes(raw[:0])
				headerlines.DelRequest(&h, raw, ns)
			}
		})
	}
}
