package accesslog_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/accesslog"
)

// buffer is a writer safe for Run's goroutine and the test's.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// request is a request as the engine hands it to Add: read from the wire,
// answered.
func request(t testing.TB, raw string, status int, body string) *fasthttp.RequestCtx {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Init2(&fakeAddrConn{}, nil, false)
	require.NoError(t, ctx.Request.Read(bufioReader(raw)))
	ctx.SetStatusCode(status)
	ctx.SetBodyString(body)
	return &ctx
}

func TestFormats(t *testing.T) {
	raw := "GET /x?\"q\" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: te\"st\xe9\r\nReferer: r\r\n\r\n"
	for _, tc := range []struct {
		format string
		check  func(t *testing.T, line string)
	}{
		{"combined", func(t *testing.T, line string) {
			re := regexp.MustCompile(`^192\.0\.2\.7 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ` +
				`"GET /x\?\\x22q\\x22 HTTP/1\.1" 200 5 "r" "te\\x22st\\xE9" \d+\.\d{3}$`)
			assert.Regexp(t, re, line)
		}},
		{"json", func(t *testing.T, line string) {
			var got struct {
				Remote, Method, URI, Proto, UserAgent string `json:",omitempty"`
				Status, Bytes                         int
			}
			require.NoError(t, json.Unmarshal([]byte(line), &got), line)
			assert.Equal(t, "192.0.2.7", got.Remote)
			assert.Equal(t, "GET", got.Method)
			assert.Equal(t, `/x?"q"`, got.URI)
			assert.Equal(t, 200, got.Status)
			assert.Equal(t, 5, got.Bytes)
		}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			f, err := accesslog.ParseFormat(tc.format)
			require.NoError(t, err)
			out := &buffer{}
			l := accesslog.New(out, f)
			done := make(chan struct{})
			go func() { l.Run(); close(done) }()
			l.Add(request(t, raw, 200, "hello"), time.Now())
			l.Close()
			<-done
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			require.Len(t, lines, 1, out.String())
			tc.check(t, lines[0])
		})
	}
	_, err := accesslog.ParseFormat("common")
	assert.EqualError(t, err, `accesslog: format "common" is not combined, json, or a format string of $variables`)
}

// TestAddAllocatesNothing: a line costs no allocation on the request path.
func TestAddAllocatesNothing(t *testing.T) {
	l := accesslog.New(&buffer{}, accesslog.Combined)
	ctx := request(t, "GET /x HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl\r\n\r\n", 200, "hello")
	now := time.Now()
	for _, f := range []accesslog.Format{accesslog.Combined, accesslog.JSON} {
		l = accesslog.New(&buffer{}, f)
		assert.Zero(t, testing.AllocsPerRun(100, func() { l.Add(ctx, now) }), "format %d", f)
	}
}

// TestDropsPastBacklog: with no writer running, lines past the backlog are
// dropped and counted, not queued.
func TestDropsPastBacklog(t *testing.T) {
	l := accesslog.New(&buffer{}, accesslog.Combined)
	ctx := request(t, "GET /"+strings.Repeat("a", 1000)+" HTTP/1.1\r\nHost: localhost\r\n\r\n", 200, "")
	for range 2000 {
		l.Add(ctx, time.Now())
	}
	assert.Greater(t, l.Dropped(), uint64(0))
	assert.Less(t, l.Dropped(), uint64(2000))
}

// TestFileReopen: after a rotation (the file renamed away), Reopen writes
// to a new file under the name, and the old one keeps what it had.
func TestFileReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	f, err := accesslog.OpenFile(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Write([]byte("one\n"))
	require.NoError(t, err)
	require.NoError(t, os.Rename(path, path+".1"))
	_, err = f.Write([]byte("two\n"))
	require.NoError(t, err)
	require.NoError(t, f.Reopen())
	_, err = f.Write([]byte("three\n"))
	require.NoError(t, err)
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	assert.Equal(t, "one\ntwo\n", string(old))
	assert.Equal(t, "three\n", string(cur))

	_, err = accesslog.OpenFile(filepath.Join(t.TempDir(), "missing", "access.log"))
	assert.ErrorContains(t, err, "accesslog: ")
}

// fakeAddrConn gives the request its client's address.
type fakeAddrConn struct{ net.Conn }

// As a socket's, the addresses are made once.
var (
	remote = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4000}
	local  = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 443}
)

func (fakeAddrConn) RemoteAddr() net.Addr { return remote }
func (fakeAddrConn) LocalAddr() net.Addr  { return local }

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
