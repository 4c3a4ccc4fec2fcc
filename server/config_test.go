package server_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/accesslog"
	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/tune"
)

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"address", server.Config{Addr: "8443"},
			`server: Addr must be host:port with a port from 0 to 65535, such as ":8443" or "127.0.0.1:0", got "8443"`},
		{"port out of range", server.Config{Addr: "127.0.0.1:99999"},
			`server: Addr must be host:port with a port from 0 to 65535, such as ":8443" or "127.0.0.1:0", got "127.0.0.1:99999"`},
		{"admin on the HTTPS address", server.Config{Addr: ":8443", AdminAddr: "127.0.0.1:8443"},
			`server: AdminAddr must be an address Addr does not listen on too (Addr is ":8443"), got "127.0.0.1:8443"`},
		{"redirect on the admin address", server.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:9090", RedirectAddr: "127.0.0.1:9090"},
			`server: RedirectAddr must be an address AdminAddr does not listen on too (AdminAddr is "127.0.0.1:9090"), got "127.0.0.1:9090"`},
		{"listeners", server.Config{Listeners: -1},
			"server: Listeners must be from 1 to 1024, or 0 for GOMAXPROCS, got -1"},
		{"listeners without SO_REUSEPORT", server.Config{Listeners: 2, Tune: tune.Options{NoDelay: true}},
			"server: Listeners must be 1 or 0 without Tune.ReusePort (several listeners share one address by SO_REUSEPORT), got 2"},
		{"negative timeout", server.Config{IdleTimeout: -time.Second},
			"server: IdleTimeout must be 1ms or more, or 0 for 10m20s, got -1s"},
		{"tiny timeout", server.Config{HandshakeTimeout: time.Microsecond},
			"server: HandshakeTimeout must be 1ms or more, or 0 for 10s, got 1µs"},
		{"max conns", server.Config{MaxConns: -5},
			"server: MaxConns must be 1 or more, or 0 for 7/8 of the file descriptor limit, got -5"},
		{"per ip", server.Config{MaxConnsPerIP: -1},
			"server: MaxConnsPerIP must be 1 or more, or 0 for no bound, got -1"},
		{"header bytes", server.Config{MaxHeaderBytes: 100},
			"server: MaxHeaderBytes must be from 1024 to 1073741824 bytes, or 0 for 16384, got 100"},
		{"body bytes", server.Config{MaxBodyBytes: -1},
			"server: MaxBodyBytes must be from 1024 to 1073741824 bytes, or 0 for 4194304, got -1"},
		{"tls version", server.Config{TLS: server.TLS{MinVersion: 0x0302}},
			"server: TLS.MinVersion must be tls.VersionTLS12 (0x303) or tls.VersionTLS13 (0x304), got 0x302"},
		{"certificate pair", server.Config{TLS: server.TLS{Certificates: []certs.KeyPair{{CertFile: "a.crt"}}}},
			"server: TLS.Certificates[0] must be a certificate file and a key file, got {CertFile:a.crt KeyFile:}"},
		{"PROXY networks without PROXY protocol", server.Config{ProxyProtocolFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
			"server: ProxyProtocolFrom must be empty unless ProxyProtocol is set, got [10.0.0.0/8]"},
		{"PROXY timeout without PROXY protocol", server.Config{ProxyProtocolTimeout: time.Second},
			"server: ProxyProtocolTimeout must be 0 unless ProxyProtocol is set, got 1s"},
		{"PROXY protocol trusting every peer unasked", server.Config{ProxyProtocol: true},
			"server: ProxyProtocolFrom must be the load balancers' networks, or 0.0.0.0/0 and ::/0 to trust every peer, got []"},
		{"PROXY timeout", server.Config{ProxyProtocol: true, ProxyProtocolFrom: anyPeer, ProxyProtocolTimeout: -time.Second},
			"server: ProxyProtocolTimeout must be 1ms or more, or 0 for 3s, got -1s"},
		{"PROXY network", server.Config{ProxyProtocol: true, ProxyProtocolFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}}},
			"server: ProxyProtocolFrom[1] must be a network such as 10.0.0.0/8 (netip.MustParsePrefix), got invalid Prefix"},
		{"access log format", server.Config{AccessLogFormat: "common"},
			`server: AccessLogFormat must be "combined", "json", or a format string of $variables, got "common"`},
		{"access log variable", server.Config{AccessLogFormat: "$status $bytes"},
			`server: AccessLogFormat: accesslog: format "$status $bytes": unknown variable $bytes (known: ` + strings.Join(accesslog.Variables(), " ") + ")"},
		{"tune field", server.Config{Tune: tune.Options{KeepAlive: net.KeepAliveConfig{Enable: true, Idle: 500 * time.Millisecond}}},
			"server: Tune.KeepAlive.Idle must be a whole number of seconds from 1s to 32767s, or 0 for 15s, got 500ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := server.New(tc.cfg, hello)
			require.Error(t, err)
			assert.Nil(t, srv)
			assert.EqualError(t, err, tc.want)
			var ce *server.ConfigError
			assert.True(t, errors.As(err, &ce), "a *server.ConfigError")
		})
	}
}

func TestNewReportsEveryField(t *testing.T) {
	_, err := server.New(server.Config{
		Addr:          "nope",
		BodyTimeout:   -1,
		MaxConnsPerIP: -1,
		Tune:          tune.Options{Backlog: -1, UserTimeout: 1500 * time.Microsecond},
	}, hello)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *server.ConfigError
		require.True(t, errors.As(e, &ce), "%v", e)
		fields = append(fields, ce.Field)
	}
	assert.Equal(t, []string{"Addr", "Tune.UserTimeout", "Tune.Backlog", "BodyTimeout", "MaxConnsPerIP"}, fields)
}

func TestNewMissingCertificate(t *testing.T) {
	dir := t.TempDir()
	_, err := server.New(server.Config{Addr: "127.0.0.1:0", TLS: server.TLS{Certificates: []certs.KeyPair{
		{CertFile: dir + "/missing.crt", KeyFile: dir + "/missing.key"},
	}}}, hello)
	require.Error(t, err)
	assert.Contains(t, err.Error(), dir+"/missing.crt")
	assert.Contains(t, err.Error(), "no such file")
}

func TestNewAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = server.New(server.Config{Addr: ln.Addr().String()}, hello)
	assert.ErrorContains(t, err, "address already in use")
}

// TestNewRefusesAddressServed: New refuses an address a server already
// listens on with SO_REUSEPORT, naming the field, instead of joining its
// group (before: the second server took a share of the connections);
// with SharePort it joins, as the redirect listener does, and the admin
// listener never does.
func TestNewRefusesAddressServed(t *testing.T) {
	a := start(t, server.Config{RedirectAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", SharePort: true}, hello)
	redirect, admin := a.ListenerAddr("redirect").String(), a.ListenerAddr("admin").String()
	for _, tc := range []struct {
		cfg   server.Config
		field string
	}{
		{server.Config{Addr: a.Addr}, "Addr"},
		{server.Config{RedirectAddr: redirect}, "RedirectAddr"},
		{server.Config{SharePort: true, AdminAddr: admin}, "AdminAddr"},
	} {
		tc.cfg.Logger = slog.New(slog.DiscardHandler)
		_, err := server.New(tc.cfg, hello)
		var ce *server.ConfigError
		require.ErrorAs(t, err, &ce, "%+v", tc.cfg)
		assert.Equal(t, tc.field, ce.Field)
		var inUse *tune.AddrInUseError
		assert.ErrorAs(t, err, &inUse)
	}
	b := start(t, server.Config{Addr: a.Addr, RedirectAddr: redirect, SharePort: true}, hello)
	assert.Equal(t, a.Addrs(), b.Addrs())
}

func TestMetrics(t *testing.T) {
	ts := start(t, server.Config{}, hello)
	client := ts.HTTPClient(t)
	for range 3 {
		resp, err := client.Get("https://" + ts.Addr + "/")
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body) // so the connection is reused
		resp.Body.Close()
	}
	var b strings.Builder
	ts.WritePrometheus(&b)
	text := b.String()
	lines := strings.Split(text, "\n")
	for _, line := range []string{
		"fastserve_connections_accepted_total 1",
		"fastserve_connections_open 1",
		"fastserve_tls_handshakes_total 1",
		"fastserve_requests_total 3",
		`fastserve_responses_total{class="2xx"} 3`,
		`fastserve_responses_total{class="5xx"} 0`,
		`fastserve_tls_handshake_failures_total{reason="timeout"} 0`,
		`fastserve_rejected_total{limit="max_conns"} 0`,
		`fastserve_rejected_total{limit="proxy_header_invalid"} 0`,
		// Three GETs as net/http writes them.
		"fastserve_bytes_in_total " + strconv.Itoa(3*len("GET / HTTP/1.1\r\nHost: "+ts.Addr+
			"\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n")),
	} {
		assert.Contains(t, lines, line)
	}
}

// TestNoReusePortOneListener: without SO_REUSEPORT the server binds one
// listener, and a second server on its address fails, as the setting says
// (before: GOMAXPROCS listeners, bound with SO_REUSEPORT whatever Tune
// said, and a second instance joined them).
func TestNoReusePortOneListener(t *testing.T) {
	cfg := server.Config{Addr: "127.0.0.1:0", Tune: tune.Options{NoDelay: true}, Logger: slogTo(io.Discard)}
	srv, err := server.New(cfg, hello)
	require.NoError(t, err)
	addr := runServer(t, srv)
	assert.Len(t, srv.Addrs(), 1)
	cfg.Addr = addr
	_, err = server.New(cfg, hello)
	assert.ErrorContains(t, err, "address already in use")
}

// TestHandoverPathChecked: check and New refuse a hand-over path that holds
// a file (the socket would replace it) or lies in no directory.
func TestHandoverPathChecked(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fastserve.yaml")
	require.NoError(t, os.WriteFile(file, []byte("addr: :443\n"), 0o600))
	for path, want := range map[string]string{
		file:                                    "a free path or a hand-over socket",
		filepath.Join(dir, "missing", "h.sock"): "a path in an existing directory",
	} {
		err := server.Config{Addr: "127.0.0.1:0", Handover: path}.Validate()
		assert.ErrorContains(t, err, "server: Handover must be "+want, path)
	}
	b, _ := os.ReadFile(file)
	assert.Equal(t, "addr: :443\n", string(b))
}
