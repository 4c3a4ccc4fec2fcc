package tune_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/selfsigned"
	"github.com/fastserve/fastserve/tune"
)

// inspectHandler answers with the kernel's state of the socket under the
// request's connection, and the client's port, as JSON.
func inspectHandler(ctx *fasthttp.RequestCtx) {
	st, err := tune.Inspect(ctx.Conn())
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	_ = json.NewEncoder(ctx).Encode(served{st, ctx.RemoteAddr().(*net.TCPAddr).Port})
}

type served struct {
	State      tune.SocketState
	ClientPort int
}

// TestTLSServerConnections is the problem tune exists for: an HTTPS server
// whose TLS connections carry the TCP keep-alive it was configured with,
// read back from the kernel for the socket under each *tls.Conn.
func TestTLSServerConnections(t *testing.T) {
	skipUnlessLinux(t)
	certPEM, keyPEM, err := selfsigned.PEM(time.Hour, "localhost", "127.0.0.1")
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)

	o := tune.Default()
	o.KeepAlive = net.KeepAliveConfig{Enable: true, Idle: 42 * time.Second, Interval: 7 * time.Second, Count: 3}
	o.UserTimeout = 63 * time.Second
	want := keepAlive{On: true, Idle: 42 * time.Second, Interval: 7 * time.Second, Count: 3, UserTimeout: 63 * time.Second, NoDelay: true}

	serve := map[string]func(s *fasthttp.Server, ln net.Listener) error{
		// fasthttp's own TLS serving over a tune listener.
		"fasthttp ServeTLS": func(s *fasthttp.Server, ln net.Listener) error {
			return s.ServeTLSEmbed(ln, certPEM, keyPEM)
		},
		// Our own TLS listener around a tune listener, as server does.
		"tls.NewListener": func(s *fasthttp.Server, ln net.Listener) error {
			return s.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
		},
	}
	for name, serve := range serve {
		t.Run(name, func(t *testing.T) {
			ln := listen(t, "tcp4", "127.0.0.1:0", o)
			s := &fasthttp.Server{Handler: inspectHandler}
			done := make(chan error, 1)
			go func() { done <- serve(s, ln) }()
			t.Cleanup(func() {
				require.NoError(t, s.Shutdown())
				<-done
			})

			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: selfsigned.Pool(cert), ServerName: "localhost"},
			}}
			defer client.CloseIdleConnections()
			ports := map[int]bool{}
			for range 5 {
				resp, err := client.Get("https://" + ln.Addr().String() + "/")
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
				require.Equal(t, 1, resp.ProtoMinor)
				var got served
				require.NoError(t, json.Unmarshal(body, &got))
				assert.Equal(t, want, keepAliveOnly(got.State))
				assert.Equal(t, "ESTABLISHED", got.State.State.String())
				ports[got.ClientPort] = true
			}
			assert.Len(t, ports, 1, "all requests on one keep-alive connection")
		})
	}
}

func keepAliveOnly(st tune.SocketState) keepAlive {
	k := optionsOf(st)
	k.ReadBuf, k.SndBuf = 0, 0
	return k
}

// TestFastHTTPAloneMissesKeepAlive documents the problem: fasthttp's
// TCPKeepalivePeriod does not reach connections served by ServeTLS. If a
// fasthttp upgrade makes this fail, the upgrade fixed it: update NOTES.md.
func TestFastHTTPAloneMissesKeepAlive(t *testing.T) {
	skipUnlessLinux(t)
	certPEM, keyPEM, err := selfsigned.PEM(time.Hour, "127.0.0.1")
	require.NoError(t, err)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	s := &fasthttp.Server{Handler: inspectHandler, TCPKeepalive: true, TCPKeepalivePeriod: 42 * time.Second}
	done := make(chan error, 1)
	go func() { done <- s.ServeTLSEmbed(ln, certPEM, keyPEM) }()
	defer func() {
		require.NoError(t, s.Shutdown())
		<-done
	}()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + ln.Addr().String() + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	var got served
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	assert.Equal(t, 15*time.Second, got.State.KeepAliveIdle, "Go's default, not the configured 42s")
}

// wrapped stands for a connection wrapper that exposes what it wraps.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

func TestInspectUnwraps(t *testing.T) {
	skipUnlessLinux(t)
	ln := listen(t, "tcp4", "127.0.0.1:0", tune.Options{UserTimeout: 1234 * time.Millisecond})
	srv, _ := connect(t, ln)
	cert, err := selfsigned.New(time.Hour, "localhost")
	require.NoError(t, err)
	tlsConn := tls.Server(srv, &tls.Config{Certificates: []tls.Certificate{cert}})

	for name, c := range map[string]net.Conn{
		"tcp":            srv,
		"tls":            tlsConn,
		"wrapper of tls": wrapped{tlsConn},
	} {
		st, err := tune.Inspect(c)
		require.NoError(t, err, name)
		assert.Equal(t, 1234*time.Millisecond, st.UserTimeout, name)
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_, err = tune.Inspect(wrapped{a})
	assert.EqualError(t, err, "tune: cannot reach a socket under tune_test.wrapped: it has neither SyscallConn nor NetConn")
	_, err = tune.Inspect(wrapped{})
	assert.EqualError(t, err, "tune: cannot reach a socket under tune_test.wrapped: NetConn returned nil")
}
