package sites_test

import (
	"bufio"
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/accesslog"
	"github.com/fastserve/fastserve/internal/tlstest"
	"github.com/fastserve/fastserve/sites"
)

// logBuffer is a writer safe for the log's writer and the test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// TestSiteOf: the site a request is logged with is the first host of the
// site its Host names ("-" for the default site), with the upstream its
// route sent it to and the request ID it was given.
func TestSiteOf(t *testing.T) {
	api := upstream(t, "api")
	r, err := sites.New(sites.Config{
		Default: sites.Site{Root: root(t, map[string]string{"index.html": "default"})},
		Sites: []sites.Site{{
			Hosts:  []string{"example.com", "*.example.com"},
			Root:   root(t, map[string]string{"index.html": "example"}),
			Routes: []sites.Route{{Path: "/api/", Proxy: []string{api}}},
		}},
		Proxy: quietProxy(),
	})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	f, err := accesslog.Compile(`$site $host $request_uri $status $upstream_addr $request_id`)
	require.NoError(t, err)
	out := &logBuffer{}
	l := accesslog.New(out, f)
	done := make(chan struct{})
	go func() { l.Run(); close(done) }()
	var names []string
	ts := tlstest.Handler(t, func(ctx *fasthttp.RequestCtx) {
		r.Handle(ctx)
		names = append(names, sites.SiteOf(ctx)) // one connection: one request at a time
		l.Add(ctx, time.Now())
	})
	c := dialNoSNI(t, ts)
	br := bufio.NewReader(c)
	for _, host := range []string{"www.example.com", "unknown.test", "Example.com:443"} {
		path := "/"
		if host == "Example.com:443" {
			path = "/api/x"
		}
		tlstest.RoundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nX-Request-ID: id-"+host[:3]+"\r\n\r\n")
	}
	l.Close()
	<-done
	assert.Equal(t, []string{"example.com", "", "example.com"}, names)
	apiAddr := strings.TrimPrefix(api, "http://")
	assert.Equal(t, "example.com www.example.com / 200 - id-www\n"+
		"- unknown.test / 200 - id-unk\n"+
		"example.com example.com /api/x 200 "+apiAddr+" id-Exa\n", out.b.String())
}
