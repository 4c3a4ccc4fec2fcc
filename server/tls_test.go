package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/server"
)

const getRequest = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"

// serverName answers with the server name (SNI) the client sent.
func serverName(ctx *fasthttp.RequestCtx) {
	st := ctx.TLSConnectionState()
	if st == nil {
		ctx.Error("not TLS", fasthttp.StatusInternalServerError)
		return
	}
	ctx.WriteString(st.ServerName)
}

// clientPort answers with the client's TCP port, so that a test can tell
// which connection a request came on.
func clientPort(ctx *fasthttp.RequestCtx) {
	ctx.WriteString(strconv.Itoa(ctx.RemoteAddr().(*net.TCPAddr).Port))
}

// handshake dials addr and completes a TLS handshake with cfg within 5 s.
// A connection it returns is closed at cleanup.
func handshake(t testing.TB, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn), nil
}

// leafOf returns the certificate in files, parsed.
func leafOf(t testing.TB, files certs.KeyPair) *x509.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	require.NoError(t, err)
	require.NotNil(t, c.Leaf)
	return c.Leaf
}

// resumes opens a connection with cfg, makes one request on it (which
// also reads the session tickets a TLS 1.3 server sends after the
// handshake), closes it and reports whether the handshake resumed a
// session.
func resumes(t testing.TB, addr string, cfg *tls.Config) bool {
	t.Helper()
	c, err := handshake(t, addr, cfg)
	require.NoError(t, err)
	defer c.Close()
	resp := roundTrip(t, c, bufio.NewReader(c), getRequest)
	assert.Equal(t, fasthttp.StatusOK, resp.StatusCode())
	return c.ConnectionState().DidResume
}

// assertRemoteAlert checks that a handshake failed because the server sent
// the alert named want.
func assertRemoteAlert(t testing.TB, err error, want string) {
	t.Helper()
	var op *net.OpError
	if assert.ErrorAs(t, err, &op) {
		assert.Equal(t, "remote error", op.Op)
	}
	assert.ErrorContains(t, err, want)
}

func TestSNI(t *testing.T) {
	dir := t.TempDir()
	a, poolA := certPair(t, dir, "a", "a.test")
	b, poolB := certPair(t, dir, "b", "b.test")

	for _, order := range []struct {
		name  string
		certs []certs.KeyPair
		first string // the name on the first certificate
	}{
		{"certs=a,b", []certs.KeyPair{a, b}, "a.test"},
		{"certs=b,a", []certs.KeyPair{b, a}, "b.test"},
	} {
		t.Run(order.name, func(t *testing.T) {
			ts := start(t, server.Config{TLS: server.TLS{Certificates: order.certs}}, serverName)
			for _, tc := range []struct {
				name     string
				cfg      *tls.Config
				wantLeaf string // the DNS name on the certificate the client sees
				wantSNI  string // the name the server saw
			}{
				{"sni=a.test", &tls.Config{ServerName: "a.test", RootCAs: poolA}, "a.test", "a.test"},
				{"sni=b.test", &tls.Config{ServerName: "b.test", RootCAs: poolB}, "b.test", "b.test"},
				{"sni=c.test", &tls.Config{ServerName: "c.test", InsecureSkipVerify: true}, order.first, "c.test"},
				// Dialled by IP address: Go sends no SNI for an IP.
				{"sni=none", &tls.Config{InsecureSkipVerify: true}, order.first, ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c, err := handshake(t, ts.Addr, tc.cfg)
					require.NoError(t, err)
					certs := c.ConnectionState().PeerCertificates
					require.NotEmpty(t, certs)
					assert.Equal(t, []string{tc.wantLeaf}, certs[0].DNSNames)
					resp := roundTrip(t, c, bufio.NewReader(c), getRequest)
					assert.Equal(t, fasthttp.StatusOK, resp.StatusCode())
					assert.Equal(t, tc.wantSNI, string(resp.Body()))
				})
			}
			assert.Equal(t, uint64(4), ts.Stats().Handshakes)
		})
	}
}

func TestReloadKeepsOpenConnections(t *testing.T) {
	dir := t.TempDir()
	files, oldPool := certPair(t, dir, "site", "localhost")
	oldFileLeaf := leafOf(t, files)
	ts := start(t, server.Config{TLS: server.TLS{Certificates: []certs.KeyPair{files}}}, clientPort)

	old, err := handshake(t, ts.Addr, &tls.Config{RootCAs: oldPool, ServerName: "localhost"})
	require.NoError(t, err)
	br := bufio.NewReader(old)
	port := strconv.Itoa(old.LocalAddr().(*net.TCPAddr).Port)
	resp := roundTrip(t, old, br, getRequest)
	require.Equal(t, fasthttp.StatusOK, resp.StatusCode())
	require.Equal(t, port, string(resp.Body()))
	oldLeaf := old.ConnectionState().PeerCertificates[0]
	require.Equal(t, oldFileLeaf.Raw, oldLeaf.Raw)

	// certPair with the same directory and name overwrites the files.
	_, newPool := certPair(t, dir, "site", "localhost")
	newFileLeaf := leafOf(t, files)
	require.NotEqual(t, oldFileLeaf.SerialNumber, newFileLeaf.SerialNumber)
	require.NoError(t, ts.Reload())
	assert.Contains(t, ts.Logs.String(), "certificates reloaded")

	// The open connection goes on serving, under its old certificate.
	for range 3 {
		resp := roundTrip(t, old, br, getRequest)
		assert.Equal(t, fasthttp.StatusOK, resp.StatusCode())
		assert.Equal(t, port, string(resp.Body()), "same connection")
		assert.False(t, resp.ConnectionClose())
	}
	assert.Equal(t, oldLeaf.Raw, old.ConnectionState().PeerCertificates[0].Raw)

	// A new handshake gets the new certificate.
	fresh, err := handshake(t, ts.Addr, &tls.Config{RootCAs: newPool, ServerName: "localhost"})
	require.NoError(t, err)
	newLeaf := fresh.ConnectionState().PeerCertificates[0]
	assert.Equal(t, newFileLeaf.Raw, newLeaf.Raw)
	assert.Zero(t, newLeaf.SerialNumber.Cmp(newFileLeaf.SerialNumber))
	assert.NotZero(t, newLeaf.SerialNumber.Cmp(oldLeaf.SerialNumber))

	// A client that trusts only the old certificate now refuses the server.
	_, err = handshake(t, ts.Addr, &tls.Config{RootCAs: oldPool, ServerName: "localhost"})
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &unknown)
	assert.Eventually(t, func() bool { return ts.Stats().HandshakeFailures[server.FailPeerRejected] == 1 },
		2*time.Second, 10*time.Millisecond, "the client's bad_certificate alert is counted")
	assert.Equal(t, uint64(2), ts.Stats().Handshakes)
}

func TestReloadFailureKeepsCertificates(t *testing.T) {
	garbage := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
	for _, tc := range []struct {
		name     string
		spoil    func(t *testing.T, files certs.KeyPair)
		wantPath func(files certs.KeyPair) string // the file the error must name
		wantIs   error                            // a cause the error must wrap, if any
	}{
		{
			name:     "garbage certificate",
			spoil:    func(t *testing.T, f certs.KeyPair) { require.NoError(t, os.WriteFile(f.CertFile, garbage, 0o600)) },
			wantPath: func(f certs.KeyPair) string { return f.CertFile },
		},
		{
			name: "key of another certificate",
			spoil: func(t *testing.T, f certs.KeyPair) {
				other, _ := certPair(t, t.TempDir(), "other", "localhost")
				key, err := os.ReadFile(other.KeyFile)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(f.KeyFile, key, 0o600))
			},
			wantPath: func(f certs.KeyPair) string { return f.CertFile },
		},
		{
			name:     "missing key",
			spoil:    func(t *testing.T, f certs.KeyPair) { require.NoError(t, os.Remove(f.KeyFile)) },
			wantPath: func(f certs.KeyPair) string { return f.KeyFile },
			wantIs:   fs.ErrNotExist,
		},
		{
			name:     "missing certificate",
			spoil:    func(t *testing.T, f certs.KeyPair) { require.NoError(t, os.Remove(f.CertFile)) },
			wantPath: func(f certs.KeyPair) string { return f.CertFile },
			wantIs:   fs.ErrNotExist,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files, pool := certPair(t, dir, "site", "localhost")
			good := leafOf(t, files)
			ts := start(t, server.Config{TLS: server.TLS{Certificates: []certs.KeyPair{files}}}, hello)

			tc.spoil(t, files)
			err := ts.Reload()
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.wantPath(files))
			if tc.wantIs != nil {
				assert.ErrorIs(t, err, tc.wantIs)
			}
			assert.Contains(t, ts.Logs.String(), "certificate reload failed")
			assert.Contains(t, ts.Logs.String(), tc.wantPath(files))

			// New handshakes still get the previous certificate.
			for range 2 {
				c, err := handshake(t, ts.Addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
				require.NoError(t, err)
				assert.Equal(t, good.Raw, c.ConnectionState().PeerCertificates[0].Raw)
				resp := roundTrip(t, c, bufio.NewReader(c), getRequest)
				assert.Equal(t, "hello", string(resp.Body()))
				c.Close()
			}

			// Once the files are good again, Reload takes them.
			_, newPool := certPair(t, dir, "site", "localhost")
			require.NoError(t, ts.Reload())
			c, err := handshake(t, ts.Addr, &tls.Config{RootCAs: newPool, ServerName: "localhost"})
			require.NoError(t, err)
			assert.Equal(t, leafOf(t, files).Raw, c.ConnectionState().PeerCertificates[0].Raw)
		})
	}
}

func TestTLSProfile(t *testing.T) {
	intermediate := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	cbc := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	}

	ts := start(t, server.Config{}, hello)
	client := func(edit func(*tls.Config)) *tls.Config {
		cfg := ts.TLSConfig()
		edit(cfg)
		return cfg
	}

	type acceptedClient struct {
		name  string
		cfg   *tls.Config
		check func(t *testing.T, st tls.ConnectionState)
	}
	accepted := []acceptedClient{
		{"default", ts.TLSConfig(), func(t *testing.T, st tls.ConnectionState) {
			assert.Equal(t, "TLS 1.3", tls.VersionName(st.Version))
			assert.Equal(t, "http/1.1", st.NegotiatedProtocol)
			assert.Equal(t, tls.X25519MLKEM768, st.CurveID)
		}},
		{"max=1.2", client(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }), func(t *testing.T, st tls.ConnectionState) {
			assert.Equal(t, "TLS 1.2", tls.VersionName(st.Version))
			assert.Contains(t, intermediate, st.CipherSuite, tls.CipherSuiteName(st.CipherSuite))
			assert.Equal(t, "http/1.1", st.NegotiatedProtocol)
		}},
		{"alpn=h2,http/1.1", client(func(c *tls.Config) { c.NextProtos = []string{"h2", "http/1.1"} }), func(t *testing.T, st tls.ConnectionState) {
			assert.Equal(t, "http/1.1", st.NegotiatedProtocol)
		}},
		{"alpn=none", client(func(c *tls.Config) { c.NextProtos = nil }), func(t *testing.T, st tls.ConnectionState) {
			assert.Empty(t, st.NegotiatedProtocol)
		}},
	}
	// The test certificates are ECDSA, so only the ECDSA suites can be
	// negotiated; each in turn.
	for _, id := range []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	} {
		only := client(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12; c.CipherSuites = []uint16{id} })
		accepted = append(accepted, acceptedClient{"max=1.2/suite=" + tls.CipherSuiteName(id), only, func(t *testing.T, st tls.ConnectionState) {
			assert.Equal(t, tls.CipherSuiteName(id), tls.CipherSuiteName(st.CipherSuite))
		}})
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			c, err := handshake(t, ts.Addr, tc.cfg)
			require.NoError(t, err)
			tc.check(t, c.ConnectionState())
			resp := roundTrip(t, c, bufio.NewReader(c), getRequest)
			assert.Equal(t, "hello", string(resp.Body()))
		})
	}

	// crypto/tls refuses a client whose ALPN list shares nothing with the
	// server's with a no_application_protocol alert (RFC 7301, section
	// 3.2); the one exception, an "http/1.1" client of an "h2" server, does
	// not apply here.
	refused := []struct {
		name  string
		cfg   *tls.Config
		alert string
	}{
		{"max=1.2/suites=CBC", client(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12; c.CipherSuites = cbc }), "handshake failure"},
		{"alpn=h2", client(func(c *tls.Config) { c.NextProtos = []string{"h2"} }), "no application protocol"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.Stats().HandshakeFailures[server.FailOther]
			_, err := handshake(t, ts.Addr, tc.cfg)
			assertRemoteAlert(t, err, tc.alert)
			assert.Eventually(t, func() bool { return ts.Stats().HandshakeFailures[server.FailOther] == before+1 },
				2*time.Second, 10*time.Millisecond, "counted as other")
		})
	}

	t.Run("min=1.3", func(t *testing.T) {
		ts13 := start(t, server.Config{TLS: server.TLS{MinVersion: tls.VersionTLS13}}, hello)
		cfg := ts13.TLSConfig()
		cfg.MaxVersion = tls.VersionTLS12
		_, err := handshake(t, ts13.Addr, cfg)
		assertRemoteAlert(t, err, "protocol version not supported")
		assert.Eventually(t, func() bool { return ts13.Stats().HandshakeFailures[server.FailVersion] == 1 },
			2*time.Second, 10*time.Millisecond, "counted as version")

		c, err := handshake(t, ts13.Addr, ts13.TLSConfig())
		require.NoError(t, err)
		assert.Equal(t, "TLS 1.3", tls.VersionName(c.ConnectionState().Version))
	})
}

func TestSessionResumption(t *testing.T) {
	t.Run("listeners=2", func(t *testing.T) {
		// Both listeners share one tls.Config, so a ticket from either
		// resumes on either, whichever the kernel hands the connection to.
		ts := start(t, server.Config{Listeners: 2}, hello)
		cfg := ts.TLSConfig()
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		for i := range 10 {
			assert.Equal(t, i > 0, resumes(t, ts.Addr, cfg), "connection %d", i)
		}
		assert.Equal(t, uint64(10), ts.Stats().Handshakes)
	})

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, disabled := range []bool{false, true} {
			name := "version=" + tls.VersionName(version) + "/tickets=" + strconv.FormatBool(!disabled)
			t.Run(name, func(t *testing.T) {
				ts := start(t, server.Config{TLS: server.TLS{DisableSessionTickets: disabled}}, hello)
				cfg := ts.TLSConfig()
				cfg.MaxVersion = version
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
				for i := range 3 {
					want := i > 0 && !disabled
					assert.Equal(t, want, resumes(t, ts.Addr, cfg), "connection %d", i)
				}
			})
		}
	}

	t.Run("rotation=50ms", func(t *testing.T) {
		// A ticket is sealed with the newest key and opened with any of the
		// last four, so it lives from three to four rotations. Each subtest
		// fills a fresh cache with one connection and does not connect
		// again until its wait is over, so that the old ticket is the one
		// offered.
		const rotation = 50 * time.Millisecond
		ts := start(t, server.Config{TLS: server.TLS{SessionTicketRotation: rotation}}, hello)
		fresh := func() *tls.Config {
			cfg := ts.TLSConfig()
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			require.False(t, resumes(t, ts.Addr, cfg), "first connection")
			return cfg
		}

		t.Run("after=1.2rotations", func(t *testing.T) {
			cfg := fresh()
			time.Sleep(rotation * 6 / 5)
			assert.True(t, resumes(t, ts.Addr, cfg))
		})
		t.Run("after=6rotations", func(t *testing.T) {
			cfg := fresh()
			time.Sleep(6 * rotation)
			assert.False(t, resumes(t, ts.Addr, cfg), "ticket key rotated out: full handshake")
			// The full handshake brought a fresh ticket.
			assert.True(t, resumes(t, ts.Addr, cfg))
		})
	})
}

// TestConnServerName: a handler reads the client's SNI from the
// connection (ServerName) as ConnectionState has it, without the copy;
// "" for a handshake that named no server.
func TestConnServerName(t *testing.T) {
	ts := start(t, server.Config{}, func(ctx *fasthttp.RequestCtx) {
		c := ctx.Conn().(interface {
			ServerName() string
			ConnectionState() tls.ConnectionState
		})
		fmt.Fprintf(ctx, "%q %q", c.ServerName(), c.ConnectionState().ServerName)
	})
	for _, name := range []string{"localhost", ""} {
		cfg := ts.TLSConfig()
		cfg.ServerName = name
		cfg.InsecureSkipVerify = name == ""
		c := ts.Dial(t, cfg)
		resp := roundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		assert.Equal(t, fmt.Sprintf("%q %q", name, name), string(resp.Body()))
	}
}
