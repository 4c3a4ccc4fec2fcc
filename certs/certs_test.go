package certs_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/internal/selfsigned"
)

// pair writes a self-signed certificate for hosts into dir.
func pair(t testing.TB, dir, name string, hosts ...string) certs.KeyPair {
	t.Helper()
	certPEM, keyPEM, err := selfsigned.PEM(time.Hour, hosts...)
	require.NoError(t, err)
	p := certs.KeyPair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	require.NoError(t, os.WriteFile(p.CertFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(p.KeyFile, keyPEM, 0o600))
	return p
}

// handshake runs a real TLS handshake over loopback against a server
// whose certificates come from src, and returns the leaf's names, or the
// client's error.
func handshake(t *testing.T, src certs.Source, serverName string) ([]string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, &tls.Config{GetCertificate: src.Certificate})
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		_ = tc.Handshake()
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(),
		&tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].DNSNames, nil
}

func TestFilesPickByName(t *testing.T) {
	dir := t.TempDir()
	a, b := pair(t, dir, "a", "a.test"), pair(t, dir, "b", "b.test")
	lax, err := certs.LoadFiles([]certs.KeyPair{a, b}, false)
	require.NoError(t, err)
	strict, err := certs.LoadFiles([]certs.KeyPair{a, b}, true)
	require.NoError(t, err)
	assert.True(t, strict.CoversName("b.test"))
	assert.False(t, strict.CoversName("c.test"))
	assert.False(t, strict.CoversName(""))
	for _, tc := range []struct {
		sni          string
		lax, strict  []string
		strictRefuse bool
	}{
		{"a.test", []string{"a.test"}, []string{"a.test"}, false},
		{"b.test", []string{"b.test"}, []string{"b.test"}, false},
		{"c.test", []string{"a.test"}, nil, true},
		{"", []string{"a.test"}, nil, true},
	} {
		got, err := handshake(t, lax, tc.sni)
		require.NoError(t, err, "sni=%q", tc.sni)
		assert.Equal(t, tc.lax, got, "sni=%q: the first covering, else the first", tc.sni)
		got, err = handshake(t, strict, tc.sni)
		if tc.strictRefuse {
			assert.ErrorContains(t, err, "unrecognized name", "sni=%q strict", tc.sni)
		} else {
			require.NoError(t, err)
			assert.Equal(t, tc.strict, got)
		}
	}
}

func TestFilesErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	good := pair(t, dir, "a", "a.test")
	missing := certs.KeyPair{CertFile: filepath.Join(dir, "missing.crt"), KeyFile: good.KeyFile}
	_, err := certs.LoadFiles([]certs.KeyPair{good, missing}, false)
	var fe *certs.ConfigError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "[1]", fe.Field)
	assert.ErrorContains(t, err, missing.CertFile)
}

// TestFilesReload: Reload swaps in what the files hold now; a broken file
// leaves the certificates in use.
func TestFilesReload(t *testing.T) {
	dir := t.TempDir()
	p := pair(t, dir, "site", "old.test")
	f, err := certs.LoadFiles([]certs.KeyPair{p}, false)
	require.NoError(t, err)

	pair(t, dir, "site", "new.test") // same files, new contents
	require.NoError(t, f.Reload())
	got, err := handshake(t, f, "new.test")
	require.NoError(t, err)
	assert.Equal(t, []string{"new.test"}, got)

	require.NoError(t, os.WriteFile(p.CertFile, []byte("not PEM"), 0o600))
	assert.ErrorContains(t, f.Reload(), p.CertFile)
	got, err = handshake(t, f, "new.test")
	require.NoError(t, err)
	assert.Equal(t, []string{"new.test"}, got, "still the last good certificate")
}

func TestExpiries(t *testing.T) {
	dir := t.TempDir()
	f, err := certs.LoadFiles([]certs.KeyPair{pair(t, dir, "a", "a.test", "127.0.0.1"), pair(t, dir, "b", "b.test", "a.test")}, false)
	require.NoError(t, err)
	ex := certs.Expiries(f, nil)
	require.Len(t, ex, 3)
	names := []string{ex[0].Name, ex[1].Name, ex[2].Name}
	assert.Equal(t, []string{"127.0.0.1", "a.test", "b.test"}, names, "each name once, sorted")
	for _, e := range ex {
		assert.WithinDuration(t, time.Now().Add(time.Hour), e.NotAfter, 2*time.Hour)
	}
}

// TestTicketKeys: instances that read the same key file resume each
// other's sessions; keys made in process do not, and Rotate keeps the
// last few, so a ticket outlives a rotation.
func TestTicketKeys(t *testing.T) {
	dir := t.TempDir()
	cert, err := selfsigned.New(time.Hour, "localhost")
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "ticket.key")
	require.NoError(t, os.WriteFile(keyFile, make([]byte, 80), 0o600))

	serve := func(cfg *tls.Config) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					tc := tls.Server(c, cfg)
					_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
					if tc.Handshake() == nil {
						_, _ = tc.Write([]byte("x")) // TLS 1.3 tickets follow the handshake
					}
				}()
			}
		}()
		return ln.Addr().String()
	}
	server := func(files []string) (*tls.Config, *certs.TicketKeys) {
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
		k, err := certs.NewTicketKeys(cfg, files)
		require.NoError(t, err)
		return cfg, k
	}
	// The client's session cache is keyed by server name: one ticket at a
	// time, the last server's.
	client := &tls.Config{RootCAs: selfsigned.Pool(cert), ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	resumed := func(addr string) bool {
		c, err := tls.Dial("tcp", addr, client)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Read(make([]byte, 1))
		require.NoError(t, err)
		return c.ConnectionState().DidResume
	}

	a, _ := server([]string{keyFile})
	b, _ := server([]string{keyFile})
	addrA, addrB := serve(a), serve(b)
	assert.False(t, resumed(addrA), "a first handshake is full")
	assert.True(t, resumed(addrB), "B opens A's ticket: they share the key file")

	c, ck := server(nil)
	d, _ := server(nil)
	addrC, addrD := serve(c), serve(d)
	assert.False(t, resumed(addrC))
	assert.False(t, resumed(addrD), "keys made in process are each process's own")
	assert.False(t, resumed(addrC))
	ck.Rotate()
	assert.True(t, resumed(addrC), "a ticket survives a rotation")

	_, err = certs.NewTicketKeys(&tls.Config{}, []string{filepath.Join(dir, "missing.key")})
	assert.ErrorContains(t, err, "missing.key")
	require.NoError(t, os.WriteFile(keyFile, make([]byte, 10), 0o600))
	_, err = certs.ReadTicketKeys([]string{keyFile})
	assert.ErrorContains(t, err, "48 or 80 random bytes")
	assert.NotContains(t, err.Error(), "> "+keyFile, "never advise overwriting the file given, which may be a certificate")

}

func TestACMEConfigDefaults(t *testing.T) {
	a, err := certs.ACMEConfig{Domains: []string{" Example.COM. "}, Storage: t.TempDir()}.WithDefaults()
	require.NoError(t, err)
	assert.Equal(t, []string{"example.com"}, a.Domains)
	assert.Equal(t, certs.DefaultACMECA, a.CA)

	_, err = certs.ACMEConfig{Domains: []string{"*.example.com", "10.0.0.1"}, Email: "nope", RenewalWindowRatio: 2}.WithDefaults()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *certs.ConfigError
		require.ErrorAs(t, e, &fe)
		fields = append(fields, fe.Field)
	}
	assert.Equal(t, []string{"Domains", "Domains", "Email", "RenewalWindowRatio"}, fields)

	_, err = certs.ACMEConfig{Email: "ops@example.com"}.WithDefaults()
	assert.ErrorContains(t, err, "at least one name when another ACME field is set")
}
