package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/internal/pebbletest"
)

// acmeName is the name the ACME tests obtain a certificate for: Pebble's
// DNS answers 127.0.0.1 for every name.
const acmeName = "test.example"

// acmeTimeout bounds each wait for an issuance: Pebble answers in well
// under a second.
const acmeTimeout = 20 * time.Second

func TestACMESettings(t *testing.T) {
	t.Parallel()
	root := writeFile(t, t.TempDir(), "not.pem", "not a certificate\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wildcard", []string{"--acme", "*.example.com"}, `--acme="*.example.com" (flag --acme): invalid value: must be DNS names without wildcards`},
		{"address", []string{"--acme", "example.com,192.0.2.1"}, `--acme="192.0.2.1" (flag --acme): invalid value: must be DNS names such as example.com, not addresses`},
		{"twice", []string{"--acme", "example.com,Example.com"}, `--acme="Example.com" (flag --acme): invalid value: must be each name once`},
		{"email", []string{"--acme", "example.com", "--acme-email", "ops"}, `--acme-email=ops (flag --acme-email): invalid value: must be an email address`},
		{"plain http CA", []string{"--acme", "example.com", "--acme-ca", "http://ca.example/dir"}, `--acme-ca=http://ca.example/dir (flag --acme-ca): invalid value: must be the https:// URL of an ACME directory`},
		{"CA root", []string{"--acme", "example.com", "--acme-ca-root", root}, fmt.Sprintf(`--acme-ca-root=%s (flag --acme-ca-root): CA root file %s: no PEM certificate in it`, root, root)},
		{"no domains", []string{"--acme-email", "ops@example.com"}, `--acme-email=ops@example.com (flag --acme-email): takes effect only with --acme or a site of sites: with one, which is empty (default)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, childEnv(t), append([]string{"check"}, tc.args...)...)
			assert.Equal(t, 2, r.code)
			require.Len(t, r.stderrLines(), 1, r.stderr)
			assert.Contains(t, r.stderr, "fastserve: "+tc.want)
		})
	}

	t.Run("environment and file", func(t *testing.T) {
		dir := t.TempDir()
		cfg := writeFile(t, dir, "fastserve.yaml", "acme: [a.example, b.example]\nacme-email: ops@example.com\n")
		r := run(t, childEnv(t, "FASTSERVE_ACME_STORAGE="+dir, "XDG_STATE_HOME="+dir), "check", "--config", cfg)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "acme: [a.example,b.example]  # config file "+cfg+":1\n")
		assert.Contains(t, r.stdout, "acme-storage: "+dir+"  # environment FASTSERVE_ACME_STORAGE\n")
		assert.Contains(t, r.stdout, "acme-ca: https://acme-v02.api.letsencrypt.org/directory  # default\n")

		r = run(t, childEnv(t, "XDG_STATE_HOME="+dir, "FASTSERVE_ACME=a.example, b.example"), "check")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "acme: [a.example,b.example]  # environment FASTSERVE_ACME\n")
		assert.Contains(t, r.stdout, "acme-storage: "+filepath.Join(dir, "fastserve", "acme")+"  # default\n", "under $XDG_STATE_HOME")
	})
}

// acmeServer starts fastserve with ACME against ca on 127.0.0.1:port,
// with args added, and waits until it serves.
func acmeServer(t *testing.T, ca *pebbletest.CA, port int, storage string, args ...string) *instance {
	t.Helper()
	args = append([]string{
		"--addr", fmt.Sprintf("127.0.0.1:%d", port), "--admin", "127.0.0.1:0", "--drain-idle-timeout", "200ms",
		"--acme", acmeName, "--acme-email", "ops@fastserve.invalid",
		"--acme-ca", ca.Directory, "--acme-ca-root", ca.RootFile, "--acme-storage", storage,
	}, args...)
	return started(start(t, childEnv(t), args...))
}

// acmeDial opens a connection for acmeName, trusting only roots.
func acmeDial(t *testing.T, in *instance, roots *x509.CertPool) *rawConn {
	t.Helper()
	return dial(t, in.https, &tls.Config{RootCAs: roots, ServerName: acmeName, NextProtos: []string{"http/1.1"}})
}

func serial(c *rawConn) string {
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestACMEIssuance: fastserve, with no certificate file, gets a
// certificate for test.example from Pebble while it serves (the
// challenge answered on its own TLS port or its redirect listener), and a
// client that trusts only Pebble's root gets 200; /metrics shows its
// expiry and no failure; another name gets the same certificate.
func TestACMEIssuance(t *testing.T) {
	t.Parallel()
	port, httpPort := freePort(t), freePort(t)
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port, HTTPPort: httpPort})
	in := acmeServer(t, ca, port, t.TempDir(), "--redirect-http", fmt.Sprintf("127.0.0.1:%d", httpPort))
	line := waitLogFor(in.proc, `msg="ACME certificate ready" names=\[test.example\]`, acmeTimeout)
	t.Log(line)

	c := acmeDial(t, in, ca.Roots(t))
	c.mustGet(t, "/")
	leaf := c.ConnectionState().PeerCertificates[0]
	assert.Equal(t, []string{acmeName}, leaf.DNSNames)
	assert.Equal(t, 1, ca.Issued())

	_, metrics := adminGet(t, in, "/metrics")
	assert.Contains(t, metrics, fmt.Sprintf("fastserve_tls_certificate_expiry_seconds{name=\"test.example\"} %d\n", leaf.NotAfter.Unix()))
	assert.Contains(t, metrics, "fastserve_acme_renewal_failures_total{name=\"test.example\"} 0\n")

	other := dial(t, in.https, &tls.Config{InsecureSkipVerify: true, ServerName: "other.example"})
	assert.Equal(t, leaf.Raw, other.leafDER(), "a name not in --acme, with no --cert")

	resp, _ := get(t, httpsClient(t, nil), "http://"+in.redirect+"/x")
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode, "the redirect still redirects")
	resp, _ = get(t, httpsClient(t, nil), "http://"+in.redirect+"/.well-known/acme-challenge/nope")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "an unknown token")
}

// TestACMERestartWithoutCA: a certificate obtained by one run (TLS-ALPN-01
// only: no redirect listener) is served by the next run from storage
// while the CA is down, and the next run's failures to reach the CA do
// not stop it serving.
func TestACMERestartWithoutCA(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port})
	roots := ca.Roots(t)
	storage := t.TempDir()

	first := acmeServer(t, ca, port, storage)
	waitLogFor(first.proc, `msg="ACME certificate ready" names=\[test.example\]`, acmeTimeout)
	c := acmeDial(t, first, roots)
	c.mustGet(t, "/")
	issued := serial(c)
	c.Close()
	first.signal(syscall.SIGTERM)
	require.Equal(t, 0, first.wait(exitTimeout))

	ca.Stop()
	second := acmeServer(t, ca, port, storage)
	waitLogFor(second.proc, `msg="ACME certificate ready" names=\[test.example\]`, acmeTimeout)
	c = acmeDial(t, second, roots)
	c.mustGet(t, "/")
	assert.Equal(t, issued, serial(c), "the stored certificate")
	assert.Equal(t, 1, ca.Issued())
}

// TestACMESharedStorage: two processes on one port (--share-port), the
// HTTPS and the redirect listener, sharing --acme-storage, started
// together: one orders, the other waits on the storage lock and loads
// the certificate; the CA's validation, which the kernel hands to either
// process, is answered from the challenge both can read in storage. Pebble
// issues one certificate, and both serve it.
func TestACMESharedStorage(t *testing.T) {
	t.Parallel()
	port, httpPort := freePort(t), freePort(t)
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port, HTTPPort: httpPort})
	storage := t.TempDir()
	redirect := fmt.Sprintf("127.0.0.1:%d", httpPort)
	a := acmeServer(t, ca, port, storage, "--redirect-http", redirect, "--share-port")
	b := acmeServer(t, ca, port, storage, "--redirect-http", redirect, "--share-port")
	for _, in := range []*instance{a, b} {
		waitLogFor(in.proc, `msg="ACME certificate ready" names=\[test.example\]`, acmeTimeout)
	}
	assert.Equal(t, 1, ca.Issued(), "certificates Pebble issued; Pebble's log:\n%s", ca.Log())
	assert.Equal(t, 1, strings.Count(a.log()+b.log(), `msg="ACME certificate obtained"`))
	assert.Equal(t, 1, strings.Count(a.log()+b.log(), `msg="certificate already exists in storage"`), "the other process, after the lock")

	files, err := filepath.Glob(filepath.Join(storage, "certificates", "*", acmeName, acmeName+".crt"))
	require.NoError(t, err)
	assert.Len(t, files, 1, "certificate files in storage")

	roots := ca.Roots(t)
	serials := map[string]bool{}
	for range 10 {
		c := acmeDial(t, a, roots)
		c.mustGet(t, "/")
		serials[serial(c)] = true
		c.Close()
	}
	assert.Len(t, serials, 1, "one certificate, whichever process answers")
	for _, in := range []*instance{a, b} {
		_, metrics := adminGet(t, in, "/metrics")
		assert.Regexp(t, `fastserve_tls_certificate_expiry_seconds\{name="test.example"\} \d+`, metrics)
	}
}

// waitLogFor is waitLog with its own bound, from the first line, and
// returns the line.
func waitLogFor(p *proc, pattern string, d time.Duration) string {
	p.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(d)
	for {
		for _, l := range strings.Split(p.log(), "\n") {
			if re.MatchString(l) {
				return l
			}
		}
		select {
		case <-p.done:
			require.FailNowf(p.t, "fastserve exited", "want /%s/; stderr:\n%s", pattern, p.log())
		default:
		}
		if time.Now().After(deadline) {
			require.FailNowf(p.t, "log line not seen", "want /%s/ within %v; stderr:\n%s", pattern, d, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
