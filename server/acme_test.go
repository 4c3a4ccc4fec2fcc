package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/internal/pebbletest"
	"github.com/fastserve/fastserve/server"
)

const acmeName = "test.example"

// acmeTimeout bounds every wait for the CA: an issuance against Pebble
// takes well under a second.
const acmeTimeout = 20 * time.Second

// freeLoopbackPort is a port on 127.0.0.1 that nothing listens on now:
// Pebble must know the server's port before the server starts.
func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// acmeConn is a keep-alive TLS connection to name on addr.
type acmeConn struct {
	*tls.Conn
	br *bufio.Reader
}

func dialACME(addr, name string, roots *x509.CertPool) (*acmeConn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config: &tls.Config{RootCAs: roots, ServerName: name, NextProtos: []string{"http/1.1"}}}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &acmeConn{Conn: c.(*tls.Conn), br: bufio.NewReader(c)}, nil
}

// get does a GET / on the connection and returns the status.
func (c *acmeConn) get(t testing.TB) int {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+acmeName+"\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(c.br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (c *acmeConn) serial() string {
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// metric is the value of the sample named series (with its labels) in a
// Prometheus text page, or -1.
func metric(page, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(page)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func prometheus(s *server.Server) string {
	var b strings.Builder
	s.WritePrometheus(&b)
	return b.String()
}

// TestACMERenewalKeepsOpenConnections: with 16-second certificates renewed
// in their second half, the server obtains a certificate that a client
// trusting only Pebble's root accepts, renews it by itself, and serves the
// new one to new connections while a keep-alive connection made before
// the renewal keeps its certificate and its requests get 200.
func TestACMERenewalKeepsOpenConnections(t *testing.T) {
	port := freeLoopbackPort(t)
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port, Validity: 16 * time.Second})
	logs := &logBuffer{}
	cfg := server.Config{
		Addr:   fmt.Sprintf("127.0.0.1:%d", port),
		ACME:   certs.ACMEConfig{Domains: []string{acmeName}, CA: ca.Directory, CARootFile: ca.RootFile, Storage: t.TempDir(), RenewalWindowRatio: 0.5},
		Logger: slogTo(logs),
	}
	cfg.ACME.RenewCheckInterval = 250 * time.Millisecond
	srv, err := server.New(cfg, hello)
	require.NoError(t, err)
	addr := runServer(t, srv)
	roots := ca.Roots(t)

	var old *acmeConn
	require.Eventually(t, func() bool {
		c, err := dialACME(addr, acmeName, roots)
		if err != nil {
			return false
		}
		old = c
		return true
	}, acmeTimeout, 50*time.Millisecond, "no trusted certificate for %s; log:\n%s\nPebble:\n%s", acmeName, logs, ca.Log())
	t.Cleanup(func() { old.Close() })
	require.Equal(t, http.StatusOK, old.get(t))
	first := old.serial()
	leaf := old.ConnectionState().PeerCertificates[0]
	assert.Equal(t, []string{acmeName}, leaf.DNSNames)
	page := prometheus(srv)
	assert.Equal(t, float64(leaf.NotAfter.Unix()), metric(page, `fastserve_tls_certificate_expiry_seconds{name="test.example"}`), page)
	assert.Equal(t, 0.0, metric(page, `fastserve_acme_renewal_failures_total{name="test.example"}`), page)

	var renewed *tls.Certificate
	var newSerial string
	require.Eventually(t, func() bool {
		c, err := dialACME(addr, acmeName, roots)
		if err != nil {
			return false
		}
		defer c.Close()
		newSerial = c.serial()
		if newSerial == first {
			return false
		}
		assert.Equal(t, http.StatusOK, c.get(t))
		renewed = &tls.Certificate{Leaf: c.ConnectionState().PeerCertificates[0]}
		return true
	}, acmeTimeout, 100*time.Millisecond, "not renewed; log:\n%s", logs)
	t.Logf("renewed: serial %s -> %s", first, newSerial)

	assert.Equal(t, http.StatusOK, old.get(t), "the connection made before the renewal")
	assert.Equal(t, first, old.serial())
	assert.GreaterOrEqual(t, ca.Issued(), 2)
	page = prometheus(srv)
	assert.GreaterOrEqual(t, metric(page, `fastserve_tls_certificate_expiry_seconds{name="test.example"}`), float64(renewed.Leaf.NotAfter.Unix()), page)
	assert.Contains(t, logs.String(), `msg="ACME certificate obtained" name=test.example renewal=true`)
}

// TestACMEUnreachableCA: with the CA's port closed, the server serves its
// certificate files, counts the failed order for the ACME name, logs it,
// and fails only the handshakes for that name.
func TestACMEUnreachableCA(t *testing.T) {
	dir := t.TempDir()
	cf, pool := certPair(t, dir, "localhost", "localhost")
	logs := &logBuffer{}
	srv, err := server.New(server.Config{
		Addr:   "127.0.0.1:0",
		TLS:    server.TLS{Certificates: []certs.KeyPair{cf}},
		ACME:   certs.ACMEConfig{Domains: []string{acmeName}, CA: fmt.Sprintf("https://127.0.0.1:%d/dir", freeLoopbackPort(t)), Storage: t.TempDir()},
		Logger: slogTo(logs),
	}, hello)
	require.NoError(t, err)
	addr := runServer(t, srv)

	require.Eventually(t, func() bool {
		return metric(prometheus(srv), `fastserve_acme_renewal_failures_total{name="test.example"}`) >= 1
	}, acmeTimeout, 50*time.Millisecond, "no failure counted; log:\n%s", logs)
	assert.Contains(t, logs.String(), `msg="ACME certificate not obtained; retrying with back-off, serving on" name=test.example`)

	c, err := dialACME(addr, "localhost", pool)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, http.StatusOK, c.get(t))
	_, err = dialACME(addr, acmeName, nil)
	assert.ErrorContains(t, err, "internal error", "a handshake for the ACME name before its certificate")

	page := prometheus(srv)
	leaf := leafOf(t, cf)
	assert.Equal(t, float64(leaf.NotAfter.Unix()), metric(page, `fastserve_tls_certificate_expiry_seconds{name="localhost"}`), page)
	assert.Equal(t, -1.0, metric(page, `fastserve_tls_certificate_expiry_seconds{name="test.example"}`), page)
}
