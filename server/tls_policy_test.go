package server_test

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/server"
)

// TestStrictSNI: a handshake for a name no certificate has, or with no
// name, is refused with unrecognized_name and no certificate; without
// StrictSNI it gets the first certificate.
func TestStrictSNI(t *testing.T) {
	dir := t.TempDir()
	a, poolA := certPair(t, dir, "a", "a.test")
	b, _ := certPair(t, dir, "b", "b.test")
	strict := start(t, server.Config{TLS: server.TLS{Certificates: []certs.KeyPair{a, b}, StrictSNI: true}}, serverName)
	lax := start(t, server.Config{TLS: server.TLS{Certificates: []certs.KeyPair{a, b}}}, serverName)

	c, err := handshake(t, strict.Addr, &tls.Config{ServerName: "a.test", RootCAs: poolA})
	require.NoError(t, err, "a known name is served")
	assert.Equal(t, []string{"a.test"}, c.ConnectionState().PeerCertificates[0].DNSNames)

	for _, sni := range []string{"c.test", ""} {
		_, err := handshake(t, strict.Addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		assertRemoteAlert(t, err, "unrecognized name")

		c, err := handshake(t, lax.Addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		require.NoError(t, err, "sni=%q without StrictSNI", sni)
		assert.Equal(t, []string{"a.test"}, c.ConnectionState().PeerCertificates[0].DNSNames, "the first certificate")
	}
	assert.Equal(t, uint64(1), strict.Stats().Handshakes)
	// The server counts a failure as its handshake ends, which may be just
	// after the client has read the alert.
	assert.Eventually(t, func() bool {
		return strict.Stats().HandshakeFailures == server.HandshakeFailures{server.FailUnknownName: 2}
	}, 2*time.Second, 5*time.Millisecond, "refusals counted by reason: %v", strict.Stats().HandshakeFailures)

	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: the s_client half is skipped")
	}
	sClient := func(addr, sni string) string {
		args := []string{"s_client", "-connect", addr, "-brief"}
		if sni != "" {
			args = append(args, "-servername", sni)
		} else {
			args = append(args, "-noservername")
		}
		cmd := exec.Command(openssl, args...)
		cmd.Stdin = nil
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	out := sClient(strict.Addr, "c.test")
	assert.Contains(t, out, "unrecognized name", "openssl s_client -servername c.test:\n%s", out)
	assert.NotContains(t, out, "Peer certificate", "no certificate sent:\n%s", out)
	out = sClient(strict.Addr, "")
	assert.Contains(t, out, "unrecognized name", "openssl s_client -noservername:\n%s", out)
	out = sClient(strict.Addr, "b.test")
	assert.Contains(t, out, "CN = b.test", "openssl s_client -servername b.test:\n%s", out)
	out = sClient(lax.Addr, "c.test")
	assert.Contains(t, out, "CN = a.test", "without StrictSNI, the first certificate:\n%s", out)
}

// TestSessionTicketKeyFiles: servers that share a key file resume each
// other's sessions; servers with their own keys do not, and the client
// falls back to a full handshake; Reload re-reads the files.
func TestSessionTicketKeyFiles(t *testing.T) {
	dir := t.TempDir()
	files, pool := certPair(t, dir, "localhost", "localhost")
	key := func(name string, n int) string {
		b := make([]byte, n)
		rand.Read(b)
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	shared := key("shared.key", 80)
	cfg := func(keys ...string) server.Config {
		return server.Config{TLS: server.TLS{Certificates: []certs.KeyPair{files}, SessionTicketKeyFiles: keys}}
	}
	a := start(t, cfg(shared), hello)
	b := start(t, cfg(key("old.key", 48), shared), hello) // shared decrypts only
	own := start(t, cfg(), hello)
	a.Pool, b.Pool, own.Pool = pool, pool, pool

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		client := a.TLSConfig()
		client.MaxVersion = version
		client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		require.False(t, resumes(t, a.Addr, client))
		assert.True(t, resumes(t, b.Addr, client), "%s: A's ticket resumes on B", tls.VersionName(version))
		// B's ticket is sealed with old.key, which A does not have.
		assert.False(t, resumes(t, a.Addr, client), "%s: B's ticket, under a key A lacks", tls.VersionName(version))
		assert.False(t, resumes(t, own.Addr, client), "%s: a server with its own keys: full handshake, and it serves", tls.VersionName(version))
	}

	// Reload takes a new key: tickets sealed before are no longer opened.
	client := a.TLSConfig()
	client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	require.False(t, resumes(t, a.Addr, client))
	require.True(t, resumes(t, a.Addr, client))
	newKey := make([]byte, 80)
	rand.Read(newKey)
	require.NoError(t, os.WriteFile(shared, newKey, 0o600))
	require.NoError(t, a.Reload())
	assert.False(t, resumes(t, a.Addr, client), "the ticket's key was replaced")
	assert.True(t, resumes(t, a.Addr, client))

	// A key file of the wrong size is refused, by name.
	bad := key("bad.key", 32)
	_, err := server.New(cfg(bad), hello)
	var ce *server.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "TLS.SessionTicketKeyFiles[0]", ce.Field)
	assert.ErrorContains(t, err, "32 bytes; a key file holds 48 or 80 random bytes")
	require.NoError(t, os.WriteFile(shared, []byte("short"), 0o600))
	assert.ErrorContains(t, a.Reload(), "5 bytes", "a broken file on reload keeps the keys in use")
	assert.True(t, resumes(t, a.Addr, client))

	// ... and does not keep a renewed certificate out (before: both parts
	// or neither, so a bad key file kept an expiring certificate in use).
	_, newPool := certPair(t, dir, "localhost", "localhost")
	err = a.Reload()
	assert.ErrorContains(t, err, shared, "the key file is named")
	assert.NotContains(t, err.Error(), files.CertFile)
	c, err := handshake(t, a.Addr, &tls.Config{RootCAs: newPool, ServerName: "localhost"})
	require.NoError(t, err, "the renewed certificate is served")
	c.Close()
	assert.Contains(t, a.Logs.String(), "session ticket key reload failed")
}

// anyNameCache is a client session cache that offers the one session it
// holds for any server name: a client replaying a ticket got for one name
// under another.
type anyNameCache struct{ s *tls.ClientSessionState }

func (c *anyNameCache) Get(string) (*tls.ClientSessionState, bool) { return c.s, c.s != nil }
func (c *anyNameCache) Put(_ string, s *tls.ClientSessionState) {
	if s != nil {
		c.s = s
	}
}

// TestStrictSNIResumption: a session resumed with a name no certificate
// covers, or with none, is refused as a full handshake with that name is
// (before: TLS 1.3 resumption served it, bypassing StrictSNI); a covered
// name still resumes.
func TestStrictSNIResumption(t *testing.T) {
	dir := t.TempDir()
	a, poolA := certPair(t, dir, "a", "a.test")
	strict := start(t, server.Config{TLS: server.TLS{Certificates: []certs.KeyPair{a}, StrictSNI: true}}, serverName)
	cache := &anyNameCache{}
	get := func(sni string) (*tls.Conn, error) {
		cfg := &tls.Config{ServerName: sni, RootCAs: poolA, InsecureSkipVerify: sni != "a.test", ClientSessionCache: cache,
			NextProtos: []string{"http/1.1"}}
		c, err := handshake(t, strict.Addr, cfg)
		if err != nil {
			return nil, err
		}
		// The ticket comes after the handshake: a request fetches it.
		resp := roundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
		require.Equal(t, 200, resp.StatusCode())
		return c, nil
	}
	c, err := get("a.test")
	require.NoError(t, err)
	require.False(t, c.ConnectionState().DidResume)
	require.NotNil(t, cache.s, "a ticket to replay")

	c, err = get("a.test")
	require.NoError(t, err)
	assert.True(t, c.ConnectionState().DidResume, "a covered name resumes")

	for _, sni := range []string{"c.test", ""} {
		_, err := handshake(t, strict.Addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true, ClientSessionCache: cache})
		assertRemoteAlert(t, err, "unrecognized name")
	}

	// A name another certificate covers gets that certificate by a full
	// handshake, not the session made for a.test (RFC 6066 section 3).
	b, _ := certPair(t, dir, "b", "b.test")
	two := start(t, server.Config{TLS: server.TLS{Certificates: []certs.KeyPair{a, b}, StrictSNI: true}}, serverName)
	cache2 := &anyNameCache{}
	c, err = handshake(t, two.Addr, &tls.Config{ServerName: "a.test", RootCAs: poolA, ClientSessionCache: cache2, NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	roundTrip(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n") // the ticket
	require.NotNil(t, cache2.s)
	c, err = handshake(t, two.Addr, &tls.Config{ServerName: "b.test", InsecureSkipVerify: true, ClientSessionCache: cache2})
	require.NoError(t, err)
	assert.False(t, c.ConnectionState().DidResume, "a.test's session is not resumed as b.test")
	assert.Equal(t, []string{"b.test"}, c.ConnectionState().PeerCertificates[0].DNSNames)
}

// TestPeerRejectedCounted: a client that refuses the server's certificate
// is counted as peer_rejected, whether it is a Go client (an alert crypto/tls
// reads) or curl on OpenSSL (an alert it cannot: before, counted as other).
func TestPeerRejectedCounted(t *testing.T) {
	ts := start(t, server.Config{}, hello)
	_, err := tls.Dial("tcp", ts.Addr, &tls.Config{ServerName: "localhost"}) // the system's roots
	require.Error(t, err)
	want := server.HandshakeFailures{server.FailPeerRejected: 1}
	if curl, err := exec.LookPath("curl"); err == nil {
		require.Error(t, exec.Command(curl, "-s", "-o", "/dev/null", "--max-time", "5", "https://"+ts.Addr+"/").Run())
		want[server.FailPeerRejected]++
	} else {
		t.Log("curl is not installed: its half is skipped")
	}
	assert.Eventually(t, func() bool { return ts.Stats().HandshakeFailures == want }, 2*time.Second, 10*time.Millisecond,
		"counted %v, want %v", ts.Stats().HandshakeFailures, want)
}
