package main

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionTicketKeysAcrossProcesses: two processes on one
// SO_REUSEPORT port. Sharing a --session-ticket-keys file, every
// resumption succeeds whichever process the kernel hands the connection
// to; each with its own keys, a resumption that lands on the other
// process falls back to a full handshake and the request still succeeds.
func TestSessionTicketKeysAcrossProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "ticket.key")
	b := make([]byte, 80) // as openssl rand 80 writes it
	rand.Read(b)
	require.NoError(t, os.WriteFile(key, b, 0o600))
	certFile, keyFile, trust := certFiles(t, dir)
	pool := trust.RootCAs

	// Each process serves a page that names it.
	root := func(name string) string {
		d := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, "index.html"), []byte(name), 0o644))
		return d
	}

	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			args := func(name string) []string {
				a := []string{"serve", "--share-port", "--cert", certFile, "--key", keyFile, "--root", root(name), "--drain-idle-timeout", "200ms"}
				if shared {
					a = append(a, "--session-ticket-keys", key)
				}
				return a
			}
			a := started(start(t, childEnv(t), append(args("A"), "--addr", "127.0.0.1:0", "--admin", "127.0.0.1:0")...))
			bb := started(start(t, childEnv(t), append(args("B"), "--addr", a.https, "--admin", "127.0.0.1:0")...))
			defer func() {
				a.signal(15)
				bb.signal(15)
				a.wait(exitTimeout)
				bb.wait(exitTimeout)
			}()

			cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			first, _ := getOnNewConn(t, a.https, cfg)
			var resumed, full int
			answered := map[string]int{}
			prev := first
			for i := range 20 {
				who, didResume := getOnNewConn(t, a.https, cfg)
				answered[who]++
				switch {
				case didResume:
					resumed++
				case shared:
					t.Errorf("connection %d: full handshake on %s, the ticket came from %s", i, who, prev)
				default:
					full++
					assert.NotEqual(t, prev, who, "connection %d: only a ticket from the other process fails", i)
				}
				prev = who
			}
			t.Logf("shared=%v: answered by %v; %d resumed, %d full handshakes", shared, answered, resumed, full)
			assert.Len(t, answered, 2, "both processes answered (the kernel spreads connections)")
			if shared {
				assert.Equal(t, 20, resumed, "20 of 20 resumed")
			} else {
				assert.Positive(t, full, "a resumption on the other process fell back to a full handshake")
			}
		})
	}
}

// getOnNewConn does a GET / on a new TLS connection and returns the body
// (which names the process) and whether the session was resumed.
func getOnNewConn(t *testing.T, addr string, cfg *tls.Config) (string, bool) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(body), c.ConnectionState().DidResume
}

// TestStrictSNIFlag: --strict-sni refuses a name the certificate lacks.
func TestStrictSNIFlag(t *testing.T) {
	t.Parallel()
	in := serve(t, childEnv(t), "serve", "--strict-sni")
	defer func() { in.signal(15); in.wait(exitTimeout) }()
	for sni, ok := range map[string]bool{"localhost": true, "other.example": false} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", in.https,
			&tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if ok {
			require.NoError(t, err, sni)
			c.Close()
			continue
		}
		require.ErrorContains(t, err, "remote error: tls: unrecognized name", sni)
	}
}
