package sites_test

import (
	"bufio"
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	brrr "github.com/molecule-man/go-brrr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/sites"
)

// apiJSON is about n bytes of JSON, as an API answers.
func apiJSON(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item %d","price":%d.%02d,"in_stock":%t}`, i, i*7%1000, i%90, i%100, i%3 > 0)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// compressUpstream is a net/http upstream with an answer of each kind a
// compressing route meets; /api/events sends n events (3), waiting on
// next between two. Its
// header names are written as set, some in lower case, as Node.js
// servers write them.
type compressUpstream struct {
	url    string
	next   chan struct{}
	conns  atomic.Int64 // connections opened to it
	closed atomic.Int64 // and closed
	gz     []byte       // what /api/gz sends, gzip-encoded
}

func newCompressUpstream(t *testing.T) *compressUpstream {
	t.Helper()
	u := &compressUpstream{next: make(chan struct{})}
	u.gz = bytes.Clone(gzipped(t, apiJSON(8<<10)))
	mux := http.NewServeMux()
	set := func(w http.ResponseWriter, name, value string) { w.Header()[name] = []string{value} } // as written
	mux.HandleFunc("/api/json", func(w http.ResponseWriter, r *http.Request) {
		var size int
		fmt.Sscan(r.URL.Query().Get("size"), &size)
		set(w, "content-type", "application/json; charset=utf-8")
		set(w, "etag", `"v1"`)
		set(w, "Accept-Ranges", "bytes")
		set(w, "vary", "Origin")
		w.Write(apiJSON(size))
	})
	mux.HandleFunc("/api/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		body := apiJSON(300 << 10)
		for len(body) > 0 { // no Content-Length: chunked
			n := min(len(body), 7000)
			w.Write(body[:n])
			w.(http.Flusher).Flush()
			body = body[n:]
		}
	})
	mux.HandleFunc("/api/gz", func(w http.ResponseWriter, r *http.Request) {
		set(w, "content-type", "application/json")
		set(w, "content-encoding", "gzip")
		w.Write(u.gz)
	})
	mux.HandleFunc("/api/file.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"f1"`)
		http.ServeContent(w, r, "file.json", time.Unix(1e9, 0), bytes.NewReader(apiJSON(8<<10))) // HEAD, 304, 206
	})
	mux.HandleFunc("/api/png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(apiJSON(8 << 10))
	})
	mux.HandleFunc("/api/empty", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/api/no-transform", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Cache-Control", "no-transform")
		w.Write(apiJSON(8 << 10))
	})
	mux.HandleFunc("/api/events", func(w http.ResponseWriter, r *http.Request) {
		n := 3
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range n {
			if i > 0 {
				select {
				case <-u.next:
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Second):
					return
				}
			}
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			w.(http.Flusher).Flush()
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: mux, ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			u.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			u.closed.Add(1)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	u.url = "http://" + ln.Addr().String()
	return u
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := stdgzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// decoded is body decoded from coding, as a client's library decodes it.
func decoded(t testing.TB, coding string, body []byte) []byte {
	t.Helper()
	r := decodingReader(t, coding, bytes.NewReader(body))
	out, err := io.ReadAll(r)
	require.NoError(t, err, "decoding %s", coding)
	return out
}

func decodingReader(t testing.TB, coding string, r io.Reader) io.Reader {
	t.Helper()
	switch coding {
	case "br":
		return brrr.NewReader(r)
	case "zstd":
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		require.NoError(t, err)
		t.Cleanup(d.Close)
		return d
	case "gzip":
		g, err := stdgzip.NewReader(r)
		require.NoError(t, err)
		return g
	}
	t.Fatalf("coding %q", coding)
	return nil
}

// siteClient is an HTTPS client of ts that sends no server name (the
// sites are told by Host) and decodes nothing.
type siteClient struct {
	c    *http.Client
	addr string
}

func newSiteClient(t *testing.T, ts *tlstest.Server) *siteClient {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableCompression: true, MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &siteClient{&http.Client{Transport: tr, Timeout: 15 * time.Second}, ts.Addr}
}

// do sends method path to host with the header lines given, and reads
// the answer whole.
func (c *siteClient) do(t *testing.T, method, host, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	resp := c.start(t, method, host, path, header...)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// start sends the request and returns the answer, its body unread.
func (c *siteClient) start(t *testing.T, method, host, path string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+c.addr+path, nil)
	require.NoError(t, err)
	req.Host = host
	for _, h := range header {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := c.c.Do(req)
	require.NoError(t, err)
	return resp
}

// compressSites serves example.com, whose /api/ route to up compresses
// and whose /raw/ route does not, over TLS.
func compressSites(t *testing.T, up *compressUpstream) *siteClient {
	t.Helper()
	r, err := sites.New(sites.Config{
		Sites: []sites.Site{{
			Hosts: []string{"example.com"},
			Routes: []sites.Route{
				{Path: "/api/", Proxy: []string{up.url}, Compress: new(true)},
				{Path: "/raw/", Proxy: []string{up.url}, AddPrefix: "/api", StripPrefix: true},
			},
		}},
		Proxy: quietProxy(),
	})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	return newSiteClient(t, tlstest.Handler(t, r.Handle))
}

// TestCompressRoute: a route with Compress serves br, zstd and gzip that
// decode to the upstream's bytes, for bodies read whole (8 KB), streamed
// with a length (40 KB) and chunked (300 KB): one Vary line with
// Accept-Encoding once, the ETag weak, no Accept-Ranges.
func TestCompressRoute(t *testing.T) {
	up := newCompressUpstream(t)
	c := compressSites(t, up)
	for _, coding := range []string{"br", "zstd", "gzip"} {
		for _, path := range []string{"/api/json?size=8192", "/api/json?size=40000", "/api/chunked"} {
			t.Run("coding="+coding+"/path="+path, func(t *testing.T) {
				accept := map[string]string{"br": "gzip, deflate, br, zstd", "zstd": "gzip, zstd", "gzip": "gzip, br;q=0"}[coding]
				resp, body := c.do(t, "GET", "example.com", path, "Accept-Encoding: "+accept)
				require.Equal(t, 200, resp.StatusCode)
				assert.Equal(t, coding, resp.Header.Get("Content-Encoding"))
				raw, want := c.do(t, "GET", "example.com", strings.Replace(path, "/api/", "/raw/", 1), "Accept-Encoding: "+accept)
				require.Empty(t, raw.Header.Get("Content-Encoding"), "the route that does not compress")
				assert.Equal(t, want, decoded(t, coding, body), "the upstream's bytes")
				assert.Less(t, len(body), len(want)/3)
				if path == "/api/chunked" {
					assert.Equal(t, []string{"Accept-Encoding"}, resp.Header.Values("Vary"))
					return
				}
				assert.Equal(t, []string{"Origin, Accept-Encoding"}, resp.Header.Values("Vary"), "one line, Accept-Encoding once")
				assert.Equal(t, []string{`W/"v1"`}, resp.Header.Values("Etag"))
				assert.Empty(t, resp.Header.Values("Accept-Ranges"))
			})
		}
	}
	t.Run("route=raw", func(t *testing.T) {
		resp, body := c.do(t, "GET", "example.com", "/raw/json?size=8192", "Accept-Encoding: br")
		assert.Empty(t, resp.Header.Get("Content-Encoding"))
		assert.Equal(t, []string{"Origin"}, resp.Header.Values("Vary"))
		assert.Equal(t, `"v1"`, resp.Header.Get("ETag"))
		assert.Equal(t, apiJSON(8192), body)
	})
}

// TestCompressLeavesAlone: what a compressing route must not compress
// passes as the upstream sent it: an answer already encoded (byte for
// byte), HEAD, 204, 304 (but for Vary) and 206 answers, a type that is not text, a
// small body, Cache-Control: no-transform, and a client that refuses
// every coding (q=0), which gets Vary all the same.
func TestCompressLeavesAlone(t *testing.T) {
	up := newCompressUpstream(t)
	c := compressSites(t, up)
	const all = "Accept-Encoding: gzip, deflate, br, zstd"
	file := apiJSON(8 << 10)
	require.Less(t, len(apiJSON(900)), 1024)
	for _, tc := range []struct {
		name, method, path string
		header             []string
		status             int
		body               []byte
		vary               bool
	}{
		{"encoded", "GET", "/api/gz", nil, 200, up.gz, false},
		{"status=204", "GET", "/api/empty", nil, 204, nil, false},
		{"status=304", "GET", "/api/file.json", []string{`If-None-Match: "f1"`}, 304, nil, true}, // the Vary of its 200 (RFC 9110 15.4.5)
		{"status=206", "GET", "/api/file.json", []string{"Range: bytes=0-4095"}, 206, file[:4096], false},
		{"type=image/png", "GET", "/api/png", nil, 200, file, false},
		{"small", "GET", "/api/json?size=900", nil, 200, apiJSON(900), false}, // under 1 KiB
		{"no-transform", "GET", "/api/no-transform", nil, 200, file, false},
		{"refused", "GET", "/api/json?size=8192", []string{"Accept-Encoding: br;q=0, gzip;q=0, zstd;q=0, identity"}, 200, apiJSON(8192), true},
		{"refused=star", "GET", "/api/json?size=8192", []string{"Accept-Encoding: *;q=0"}, 200, apiJSON(8192), true},
		{"none", "GET", "/api/json?size=8192", []string{"Accept-Encoding: "}, 200, apiJSON(8192), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := tc.header
			if !strings.HasPrefix(strings.Join(header, ""), "Accept-Encoding") {
				header = append(header, all)
			}
			resp, body := c.do(t, tc.method, "example.com", tc.path, header...)
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.name == "encoded" {
				assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
				assert.Equal(t, fmt.Sprint(len(up.gz)), resp.Header.Get("Content-Length"))
			} else {
				assert.Empty(t, resp.Header.Get("Content-Encoding"))
			}
			assert.Equal(t, tc.body, nilIfEmpty(body))
			vary := resp.Header.Values("Vary")
			switch {
			case tc.vary && tc.status == 304: // the upstream's 304 has no Vary: Origin
				assert.Equal(t, []string{"Accept-Encoding"}, vary)
			case tc.vary:
				assert.Equal(t, []string{"Origin, Accept-Encoding"}, vary)
			default:
				assert.NotContains(t, strings.ToLower(strings.Join(vary, ",")), "accept-encoding")
			}
		})
	}
}

// TestCompressHead: a HEAD gets the fields its GET would have, the body
// left alone (there is none): Content-Encoding, Vary, no length.
func TestCompressHead(t *testing.T) {
	up := newCompressUpstream(t)
	c := compressSites(t, up)
	resp, body := c.do(t, "HEAD", "example.com", "/api/file.json", "Accept-Encoding: gzip, deflate, br, zstd")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Empty(t, body)
	assert.Equal(t, "br", resp.Header.Get("Content-Encoding"))
	assert.Contains(t, strings.ToLower(strings.Join(resp.Header.Values("Vary"), ",")), "accept-encoding")
	assert.Empty(t, resp.Header.Get("Content-Length"))
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// TestCompressEvents: a proxied event stream is compressed as it
// streams: the client decodes each event before the upstream is let to
// send the next.
func TestCompressEvents(t *testing.T) {
	for _, coding := range []string{"br", "zstd", "gzip"} {
		t.Run("coding="+coding, func(t *testing.T) {
			up := newCompressUpstream(t)
			c := compressSites(t, up)
			resp := c.start(t, "GET", "example.com", "/api/events", "Accept-Encoding: "+coding)
			defer resp.Body.Close()
			require.Equal(t, coding, resp.Header.Get("Content-Encoding"))
			events := bufio.NewReader(decodingReader(t, coding, resp.Body))
			for i := range 3 {
				var got string
				for range 3 { // id, data, the blank line
					line, err := events.ReadString('\n')
					require.NoError(t, err, "event %d", i)
					got += line
				}
				assert.Equal(t, fmt.Sprintf("id: %d\ndata: event %d\n\n", i, i), got)
				if i < 2 {
					select {
					case up.next <- struct{}{}: // only once this event is decoded
					case <-time.After(10 * time.Second):
						t.Fatal("the upstream no longer waits")
					}
				}
			}
			_, err := events.ReadByte()
			assert.Equal(t, io.EOF, err, "the stream ends")
		})
	}
}

// TestCompressUpstreamConnections: a compressed stream read to its end
// gives its upstream connection back to the pool (the next requests
// reuse it); a client that leaves in the middle of one has it closed.
func TestCompressUpstreamConnections(t *testing.T) {
	up := newCompressUpstream(t)
	c := compressSites(t, up)
	for range 3 {
		resp, body := c.do(t, "GET", "example.com", "/api/chunked", "Accept-Encoding: br")
		require.Equal(t, "br", resp.Header.Get("Content-Encoding"))
		require.Equal(t, apiJSON(300<<10), decoded(t, "br", body))
	}
	assert.Equal(t, int64(1), up.conns.Load(), "one upstream connection, reused")

	resp := c.start(t, "GET", "example.com", "/api/events?n=1000", "Accept-Encoding: gzip")
	events := bufio.NewReader(decodingReader(t, "gzip", resp.Body))
	line, err := events.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "id: 0\n", line)
	closedBefore := up.closed.Load()
	resp.Body.Close() // the client leaves mid-stream
	c.c.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for up.closed.Load() == closedBefore && time.Now().Before(deadline) {
		select {
		case up.next <- struct{}{}: // the next event's write finds the client gone
		case <-time.After(50 * time.Millisecond):
		}
	}
	assert.Greater(t, up.closed.Load(), closedBefore, "the stream's upstream connection was closed, not pooled")
}

// TestCompressSiteLevel: a site's Compress covers its Proxy and its
// Handler but a route that turns it off; a site's files are compressed
// by the file server alone, once.
func TestCompressSiteLevel(t *testing.T) {
	up := newCompressUpstream(t)
	page := apiJSON(4 << 10)
	r, err := sites.New(sites.Config{
		Sites: []sites.Site{{
			Hosts:    []string{"proxied.test"},
			Proxy:    []string{up.url},
			Routes:   []sites.Route{{Path: "/api/png", Proxy: []string{up.url}}, {Path: "/raw/", Proxy: []string{up.url}, Compress: new(false)}},
			Compress: true,
		}, {
			Hosts:    []string{"app.test"},
			Handler:  func(ctx *fasthttp.RequestCtx) { ctx.SetContentType("text/html"); ctx.SetBody(page) },
			Compress: true,
		}, {
			Hosts:  []string{"files.test"},
			Root:   root(t, map[string]string{"data.json": string(page)}),
			Routes: []sites.Route{{Path: "/api/", Proxy: []string{up.url}, Compress: new(true)}},
		}},
		Proxy: quietProxy(),
	})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	c := newSiteClient(t, tlstest.Handler(t, r.Handle))

	resp, body := c.do(t, "GET", "proxied.test", "/api/json?size=8192", "Accept-Encoding: zstd")
	assert.Equal(t, "zstd", resp.Header.Get("Content-Encoding"), "the site's proxy")
	assert.Equal(t, apiJSON(8192), decoded(t, "zstd", body))
	resp, _ = c.do(t, "GET", "proxied.test", "/raw/x", "Accept-Encoding: zstd")
	assert.Empty(t, resp.Header.Get("Content-Encoding"), "a route that turns it off")
	resp, body = c.do(t, "GET", "app.test", "/", "Accept-Encoding: gzip")
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"), "the site's handler")
	assert.Equal(t, page, decoded(t, "gzip", body))
	resp, body = c.do(t, "GET", "files.test", "/data.json", "Accept-Encoding: gzip")
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"), "the file server's own")
	assert.Equal(t, page, decoded(t, "gzip", body), "compressed once")
	resp, _ = c.do(t, "GET", "files.test", "/missing.json", "Accept-Encoding: gzip")
	assert.Equal(t, 404, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Content-Encoding"))
}

// TestCompressValidate: Compress on a site with nothing it would compress
// (only files) is refused, naming the field.
func TestCompressValidate(t *testing.T) {
	err := sites.Config{Sites: []sites.Site{{Hosts: []string{"a.test"}, Root: t.TempDir(), Compress: true}}}.Validate()
	var ce *sites.ConfigError
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, "Sites[0].Compress", ce.Field)
	_, err = sites.New(sites.Config{Sites: []sites.Site{{Hosts: []string{"a.test"}, Root: t.TempDir(), Compress: true}}})
	assert.ErrorContains(t, err, "Compress")
}
