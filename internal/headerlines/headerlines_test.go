package headerlines_test

import (
	"bufio"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/headerlines"
)

func names(ns ...string) (n headerlines.Names) {
	for _, s := range ns {
		n = n.Add([]byte(s))
	}
	return n
}

func readRequest(t testing.TB, head string) *fasthttp.RequestHeader {
	t.Helper()
	var h fasthttp.RequestHeader
	require.NoError(t, h.Read(bufio.NewReader(strings.NewReader(head))))
	return &h
}

func TestDelRequest(t *testing.T) {
	for _, tc := range []struct {
		name, head, want string
		del              []string
	}{{
		name: "repeats",
		head: "GET /a?b HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nAccept: 1\r\nCookie: a=\"1\"\r\nAccept: 2\r\nCookie: b=2\r\nAccept: 3\r\n\r\n",
		del:  []string{"connection"},
		want: "GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: 1\r\nCookie: a=\"1\"\r\nAccept: 2\r\nCookie: b=2\r\nAccept: 3\r\n\r\n",
	}, {
		name: "no repeats",
		head: "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nAccept: 1\r\nX-A: 2\r\n\r\n",
		del:  []string{"Connection", "Keep-Alive"},
		want: "GET / HTTP/1.1\r\nHost: x\r\nX-A: 2\r\nAccept: 1\r\n\r\n", // fasthttp's Del: order of different names may change
	}, {
		name: "nothing to delete",
		head: "GET / HTTP/1.1\r\nHost: x\r\nAccept: 1\r\nAccept: 2\r\n\r\n",
		del:  []string{"Connection"},
		want: "GET / HTTP/1.1\r\nHost: x\r\nAccept: 1\r\nAccept: 2\r\n\r\n",
	}, {
		name: "chunked body keeps its length",
		head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nTE: trailers\r\nX-A: 2\r\n\r\n",
		del:  []string{"Transfer-Encoding", "TE"},
		want: "POST / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
	}, {
		name: "no type stays without",
		head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
		del:  []string{"Connection"},
		want: "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\nX-A: 1\r\nX-A: 2\r\n\r\n", // the default, written
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := readRequest(t, tc.head)
			size, typ := h.ContentLength(), string(h.ContentType())
			headerlines.DelRequest(h, h.AppendBytes(nil), names(tc.del...))
			assert.Equal(t, tc.want, string(h.AppendBytes(nil)))
			assert.Equal(t, size, h.ContentLength())
			assert.Equal(t, typ, string(h.ContentType()))
		})
	}
}

func TestDelResponse(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nconnection: keep-alive, x-hop\r\nTransfer-Encoding: chunked\r\nlink: <a>\r\nX-Hop: 1\r\nDate: d\r\n" +
		"Link: <b>\r\nSet-Cookie: a=\"1\"; Path=/\r\nContent-Type: text/plain\r\nSet-Cookie: b=2\r\nlink: <c>\r\nKeep-Alive: timeout=5\r\nX-One: 1\r\n\r\n"
	for _, normalise := range []bool{false, true} {
		var h fasthttp.ResponseHeader
		if !normalise {
			h.DisableNormalizing()
		}
		require.NoError(t, h.Read(bufio.NewReader(strings.NewReader(head))))
		headerlines.DelResponse(&h, names("Connection", "Keep-Alive", "Transfer-Encoding", "X-Hop"))
		var links, cookies, all []string
		for k, v := range h.All() {
			all = append(all, string(k))
			switch strings.ToLower(string(k)) {
			case "link":
				links = append(links, string(v))
			case "set-cookie":
				cookies = append(cookies, string(v))
			}
		}
		assert.Equal(t, []string{"<a>", "<b>", "<c>"}, links, "normalise=%v", normalise)
		assert.Equal(t, []string{`a="1"; Path=/`, "b=2"}, cookies)
		assert.Equal(t, []byte("d"), h.Peek("Date"))
		for _, k := range all {
			assert.NotContains(t, []string{"connection", "keep-alive", "transfer-encoding", "x-hop"}, strings.ToLower(k))
		}
		assert.Contains(t, all, map[bool]string{false: "link", true: "Link"}[normalise], "a name keeps its spelling")
	}
}

// TestDelAllocs: a delete that need not rebuild (no name left twice)
// allocates nothing.
func TestDelAllocs(t *testing.T) {
	const req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nAccept: 1\r\nUser-Agent: u\r\nAccept-Encoding: gzip\r\n\r\n"
	ns := names("Connection", "Keep-Alive")
	var h fasthttp.RequestHeader
	var raw []byte
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		_ = h.Read(bufio.NewReader(strings.NewReader(req)))
		raw = h.AppendBytes(raw[:0])
		headerlines.DelRequest(&h, raw, ns)
	})-testing.AllocsPerRun(100, func() {
		_ = h.Read(bufio.NewReader(strings.NewReader(req)))
		raw = h.AppendBytes(raw[:0])
	}))

	const resp = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nLink: <a>\r\nX-A: 1\r\n\r\n"
	var rh fasthttp.ResponseHeader
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		_ = rh.Read(bufio.NewReader(strings.NewReader(resp)))
		headerlines.DelResponse(&rh, ns)
	})-testing.AllocsPerRun(100, func() {
		_ = rh.Read(bufio.NewReader(strings.NewReader(resp)))
	}))
}

// FuzzDelRequest: whatever header fasthttp accepts, DelRequest leaves
// every line not deleted, those of one name in their order, and none of
// those deleted.
func FuzzDelRequest(f *testing.F) {
	f.Add("Connection: keep-alive\r\nAccept: 1\r\nAccept: 2\r\nCookie: a=1\r\nCookie: b=\"2\"\r\n", "connection")
	f.Add("X-A: 1\r\nTransfer-Encoding: chunked\r\nx-a: 2\r\nTE: trailers\r\n", "te,transfer-encoding")
	f.Add("Trailer: X-T\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 3\r\n", "trailer")
	f.Fuzz(func(t *testing.T, lines, del string) {
		var h fasthttp.RequestHeader
		if h.Read(bufio.NewReader(strings.NewReader("POST /p HTTP/1.1\r\nHost: h\r\n"+lines+"\r\n"))) != nil {
			return
		}
		ns := names(strings.Split(del, ",")...)
		before := h.AppendBytes(nil)
		headerlines.DelRequest(&h, before, ns)
		after := h.AppendBytes(nil)
		want := map[string][]string{}
		for k, v, rest, ok := headerlines.Next(headerlines.Of(before)); ok; k, v, rest, ok = headerlines.Next(rest) {
			if !ns.Has(k) {
				want[strings.ToLower(string(k))] = append(want[strings.ToLower(string(k))], string(v))
			}
		}
		got := map[string][]string{}
		for k, v, rest, ok := headerlines.Next(headerlines.Of(after)); ok; k, v, rest, ok = headerlines.Next(rest) {
			if ns.Has(k) && !strings.EqualFold(string(k), "transfer-encoding") {
				t.Fatalf("%q left in %q", k, after)
			}
			got[strings.ToLower(string(k))] = append(got[strings.ToLower(string(k))], string(v))
		}
		delete(got, "transfer-encoding") // written back for a chunked body
		delete(want, "transfer-encoding")
		assert.Equal(t, want, got, "before %q\nafter %q", before, after)
	})
}

// FuzzDelResponse: as FuzzDelRequest, for an upstream's answer read
// with its names as sent.
func FuzzDelResponse(f *testing.F) {
	f.Add("connection: keep-alive\r\nLink: 1\r\nlink: 2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=\"2\"\r\n", "connection")
	f.Add("X-A: 1\r\nTransfer-Encoding: chunked\r\nx-a: 2\r\nKeep-Alive: timeout=5\r\nDate: d\r\n", "keep-alive,transfer-encoding")
	f.Fuzz(func(t *testing.T, lines, del string) {
		var h fasthttp.ResponseHeader
		h.DisableNormalizing()
		if h.Read(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\n"+lines+"\r\n"))) != nil {
			return
		}
		ns := names(strings.Split(del, ",")...)
		lineSet := func(all bool) map[string][]string {
			m := map[string][]string{}
			for k, v := range h.All() {
				if name := strings.ToLower(string(k)); all || !ns.Has(k) {
					m[name] = append(m[name], string(v))
				}
			}
			return m
		}
		want := lineSet(false)
		headerlines.DelResponse(&h, ns)
		got := lineSet(true)
		for k := range got {
			if ns.Has([]byte(k)) && k != "transfer-encoding" && k != "content-length" && k != "content-type" {
				t.Fatalf("%q left: %v", k, got)
			}
		}
		for _, k := range []string{"transfer-encoding", "content-length", "content-type", "connection"} {
			delete(got, k) // written, or defaulted, by fasthttp
			delete(want, k)
		}
		assert.Equal(t, want, got)
	})
}
