package accesslog_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/accesslog"
	"github.com/fastserve/fastserve/internal/reqinfo"
	"github.com/fastserve/fastserve/internal/tlstest"
)

// lines writes the lines of ctxs, answered at now, in format f, and
// returns what Run wrote.
func lines(t testing.TB, f accesslog.Format, now time.Time, ctxs ...*fasthttp.RequestCtx) string {
	t.Helper()
	out := &buffer{}
	l := accesslog.New(out, f)
	done := make(chan struct{})
	go func() { l.Run(); close(done) }()
	for _, ctx := range ctxs {
		l.Add(ctx, now)
	}
	l.Close()
	<-done
	return out.String()
}

// tlsConn is a connection with a TLS state, as the engine's and
// *tls.Conn are.
type tlsConn struct {
	fakeAddrConn
	state tls.ConnectionState
}

func (c *tlsConn) ConnectionState() tls.ConnectionState { return c.state }

// everyVariable uses each variable once.
const everyVariable = `$remote_addr|$time_local|$time_iso8601|$request|$request_method|$request_uri|$status|` +
	`$body_bytes_sent|$http_referer|$http_user_agent|${http_x_forwarded_for}x|$request_time|$host|$request_id|` +
	`$request_length|$ssl_protocol|$ssl_session_reused|$upstream_addr|$upstream_response_time|$site`

// rawRequest is a request with a body, a header that needs escaping, and
// a Host with upper case and a port.
const rawRequest = "POST /x?a=\"b\" HTTP/1.1\r\nHost: WWW.Example.COM:8443\r\nUser-Agent: te\"st\xe9\r\n" +
	"X-Request-ID: abc-1\r\nX-Forwarded-For: 10.0.0.1\r\nContent-Length: 5\r\n\r\nhello"

// fullRequest is rawRequest answered 201 over TLS 1.3 (resumed) by site
// example.com through two upstream attempts.
func fullRequest(t testing.TB) *fasthttp.RequestCtx {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Init2(&tlsConn{state: tls.ConnectionState{Version: tls.VersionTLS13, DidResume: true}}, nil, false)
	require.NoError(t, ctx.Request.Read(bufioReader(rawRequest)))
	ctx.SetStatusCode(201)
	ctx.SetBodyString("hi!!")
	reqinfo.SetSite(&ctx, &reqinfo.Site{Name: "example.com"})
	reqinfo.AddUpstream(&ctx, "10.0.0.2:8080", 1500*time.Microsecond)
	reqinfo.AddUpstream(&ctx, "10.0.0.3:8080", 20*time.Millisecond)
	return &ctx
}

// TestCompile: each variable's value, exactly; literal text as it is; an
// empty value as "-"; unsafe bytes as \xHH.
func TestCompile(t *testing.T) {
	f, err := accesslog.Compile(everyVariable)
	require.NoError(t, err)
	assert.Equal(t, everyVariable, f.String())
	ctx := fullRequest(t)
	start := ctx.Time()
	want := "192.0.2.7|" + start.Format("02/Jan/2006:15:04:05 -0700") + "|" + start.Format("2006-01-02T15:04:05-07:00") +
		`|POST /x?a=\x22b\x22 HTTP/1.1|POST|/x?a=\x22b\x22|201|4|-|te\x22st\xE9|10.0.0.1x|1.234|www.example.com|abc-1|` +
		fmt.Sprint(len(rawRequest)) + "|TLSv1.3|r|10.0.0.2:8080, 10.0.0.3:8080|0.002, 0.020|example.com\n"
	assert.Equal(t, want, lines(t, f, start.Add(1234*time.Millisecond), ctx))

	// Plain HTTP, nothing recorded: the TLS, upstream and site variables
	// are "-".
	plain := request(t, "GET / HTTP/1.0\r\n\r\n", 200, "")
	f, err = accesslog.Compile(`[$host] $request_length $ssl_protocol $ssl_session_reused $upstream_addr $upstream_response_time $site $request_id`)
	require.NoError(t, err)
	assert.Equal(t, "[-] 16 - - - - - -\n", lines(t, f, time.Now(), plain))
}

// TestCompileErrors: an unknown variable is named, with the known ones.
func TestCompileErrors(t *testing.T) {
	known := "$body_bytes_sent $host $http_<name> $remote_addr $request $request_id $request_length $request_method " +
		"$request_time $request_uri $site $ssl_protocol $ssl_session_reused $status $time_iso8601 $time_local " +
		"$upstream_addr $upstream_response_time"
	for _, tc := range []struct{ format, err string }{
		{`$remote_addr $bytes_sent`, `accesslog: format "$remote_addr $bytes_sent": unknown variable $bytes_sent (known: ` + known + `)`},
		{`${http_}`, `accesslog: format "${http_}": unknown variable $http_ (known: ` + known + `)`},
		{`cost $ 5`, `accesslog: format "cost $ 5": a $ names no variable (known: ` + known + `)`},
		{`${status`, `accesslog: format "${status": ${ without its }`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			_, err := accesslog.Compile(tc.format)
			assert.EqualError(t, err, tc.err)
			_, err = accesslog.ParseFormat(tc.format)
			assert.EqualError(t, err, tc.err)
		})
	}
	assert.Equal(t, strings.Fields(known), accesslog.Variables())
}

// TestCombinedExactly: the combined format, a compiled format string,
// writes the line it always has.
func TestCombinedExactly(t *testing.T) {
	ctx := request(t, "GET /x?\"q\" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: te\"st\xe9\r\nReferer: r\r\n\r\n", 200, "hello")
	noReferer := request(t, "HEAD / HTTP/1.0\r\n\r\n", 404, "")
	start := ctx.Time()
	got := lines(t, accesslog.Combined, start.Add(1500*time.Millisecond), ctx, noReferer)
	want := "192.0.2.7 - - [" + start.Format("02/Jan/2006:15:04:05 -0700") + `] "GET /x?\x22q\x22 HTTP/1.1" 200 5 "r" "te\x22st\xE9" 1.500` + "\n" +
		"192.0.2.7 - - [" + noReferer.Time().Format("02/Jan/2006:15:04:05 -0700") + `] "HEAD / HTTP/1.0" 404 0 "-" "-" ` +
		fmt.Sprintf("%.3f", start.Add(1500*time.Millisecond).Sub(noReferer.Time()).Seconds()) + "\n"
	assert.Equal(t, want, got)
	for _, name := range []string{"", "combined"} {
		f, err := accesslog.ParseFormat(name)
		require.NoError(t, err)
		assert.Equal(t, "combined", f.String())
	}
	assert.Equal(t, got, lines(t, accesslog.Format{}, start.Add(1500*time.Millisecond), ctx, noReferer), "the zero Format is Combined")
}

// TestTLSFields: over a real TLS connection, the version and whether the
// session was resumed (a second connection with the first's ticket), the
// Host and the bytes the request took on the wire.
func TestTLSFields(t *testing.T) {
	f, err := accesslog.Compile(`$ssl_protocol $ssl_session_reused $host $request_length $request_id "$request"`)
	require.NoError(t, err)
	out := &buffer{}
	l := accesslog.New(out, f)
	done := make(chan struct{})
	go func() { l.Run(); close(done) }()
	other := accesslog.New(&buffer{}, f)
	allocs := make(chan float64, 2) // of each request's line
	ts := tlstest.Handler(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		l.Add(ctx, time.Now()) // as the engine does, once the answer is set
		allocs <- testing.AllocsPerRun(10, func() { other.Add(ctx, time.Now()) })
	})
	cfg := ts.TLSConfig()
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	post := "POST /up HTTP/1.1\r\nHost: LocalHost:443\r\nX-Request-ID: r-1\r\nContent-Length: 3\r\n\r\nabc"
	for i, req := range []string{"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", post} {
		c, err := tls.Dial("tcp", ts.Addr, cfg)
		require.NoError(t, err)
		resp := tlstest.RoundTrip(t, c, bufio.NewReader(c), req)
		require.Equal(t, fasthttp.StatusNoContent, resp.StatusCode())
		require.Equal(t, i == 1, c.ConnectionState().DidResume, "connection %d resumed", i)
		c.Close()
	}
	l.Close()
	<-done
	assert.Equal(t, "TLSv1.3 . localhost 35 - \"GET / HTTP/1.1\"\n"+
		"TLSv1.3 r localhost "+fmt.Sprint(len(post))+" r-1 \"POST /up HTTP/1.1\"\n", out.String())
	assert.Zero(t, <-allocs, "a line of a *tls.Conn's state")
	assert.Zero(t, <-allocs, "a line of a resumed *tls.Conn's state")
}

// TestAddAllocatesNothingCompiled: a line of a format string with every
// variable, over TLS, through upstreams, costs no allocation.
func TestAddAllocatesNothingCompiled(t *testing.T) {
	f, err := accesslog.Compile(everyVariable)
	require.NoError(t, err)
	l := accesslog.New(&buffer{}, f)
	ctx := fullRequest(t)
	now := time.Now()
	assert.Zero(t, testing.AllocsPerRun(100, func() { l.Add(ctx, now) }))
}

// BenchmarkAdd: the cost of a line, by format.
func BenchmarkAdd(b *testing.B) {
	every, err := accesslog.Compile(everyVariable)
	require.NoError(b, err)
	for _, tc := range []struct {
		name string
		f    accesslog.Format
	}{{"combined", accesslog.Combined}, {"json", accesslog.JSON}, {"every-variable", every}} {
		b.Run("format="+tc.name, func(b *testing.B) {
			l := accesslog.New(&buffer{}, tc.f)
			ctx := fullRequest(b)
			now := time.Now()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%1000 == 0 {
					l.Empty()
				}
				l.Add(ctx, now)
			}
		})
	}
}
