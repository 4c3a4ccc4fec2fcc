package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer is gorilla/websocket's echo over TLS on 127.0.0.1; change, if
// set, alters each message before it goes back.
func echoServer(t *testing.T, change func([]byte)) (url, ca string) {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if change != nil {
				change(msg)
			}
			if c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	return "wss://" + srv.Listener.Addr().String() + "/echo", ca
}

func testOptions(t *testing.T, url, ca string) options {
	t.Helper()
	o := options{url: url, ca: ca, conns: 4, size: 64, duration: 300 * time.Millisecond, warmup: 100 * time.Millisecond,
		clockTick: 100, parallel: 2, timeout: 5 * time.Second, setupTimeout: 10 * time.Second,
		pids: strconv.Itoa(os.Getpid())}
	require.NoError(t, o.check())
	return o
}

// TestEchoLoad: against a verified TLS 1.3 echo server, every message
// comes back, latencies are ordered, and the CPU time and RSS of the
// process given are read.
func TestEchoLoad(t *testing.T) {
	url, ca := echoServer(t, nil)
	res, err := echoLoad(testOptions(t, url, ca))
	require.NoError(t, err)
	assert.Positive(t, res.Messages)
	assert.Zero(t, res.Errors, res.FirstError)
	assert.InDelta(t, float64(res.Messages)/0.3, res.Rate, 1)
	assert.LessOrEqual(t, res.P50, res.P99)
	assert.LessOrEqual(t, res.P99, res.Max)
	assert.GreaterOrEqual(t, res.CPUTicks, res.UserTicks)
	assert.Positive(t, res.RSS, "this process's VmRSS")
	assert.Equal(t, "TLS 1.3 TLS_AES_128_GCM_SHA256", res.TLS)
}

// TestWrongEcho: an echo that differs from the message is an error, at
// set-up (the first echo) and in the run.
func TestWrongEcho(t *testing.T) {
	url, ca := echoServer(t, func(b []byte) { b[len(b)-1]++ })
	_, err := echoLoad(testOptions(t, url, ca))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "first echo: echo differs from the message")

	url, ca = echoServer(t, func(b []byte) { b[7] += 2 }) // the sequence number
	_, err = echoLoad(testOptions(t, url, ca))
	assert.ErrorContains(t, err, "message 1 came back as 3")
}

// TestUnverified: with no -ca the self-signed certificate is accepted;
// with another CA it is refused.
func TestUnverified(t *testing.T) {
	url, _ := echoServer(t, nil)
	otherCA := selfSigned(t)
	o := testOptions(t, url, "")
	o.pids = ""
	require.NoError(t, o.check())
	res, err := echoLoad(o)
	require.NoError(t, err)
	assert.Zero(t, res.CPUTicks, "no -pids")

	_, err = echoLoad(testOptions(t, url, otherCA))
	assert.ErrorContains(t, err, "certificate")
}

// selfSigned writes a CA certificate of its own to a PEM file.
func selfSigned(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "other.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return path
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*options)
		want string
	}{
		{"both modes", func(o *options) { o.idle = 5 }, "either -n"},
		{"no mode", func(o *options) { o.conns = 0 }, "either -n"},
		{"tiny size", func(o *options) { o.size = 4 }, "-size must be >= 8"},
		{"http", func(o *options) { o.url = "https://127.0.0.1/" }, "ws:// or wss://"},
		{"bad pid", func(o *options) { o.pids = "1,x" }, `-pids must be process ids, got "x"`},
		{"no duration", func(o *options) { o.duration = 0 }, "-d must be > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options{url: "ws://127.0.0.1:1/", conns: 1, size: 64, duration: time.Second, clockTick: 100,
				parallel: 1, timeout: time.Second, setupTimeout: time.Second}
			tc.edit(&o)
			err := o.check()
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tc.want), "%v", err)
		})
	}
	o := options{url: "wss://localhost/x?y=1", conns: 1, size: 64, duration: time.Second, clockTick: 100,
		parallel: 1, timeout: time.Second, setupTimeout: time.Second}
	require.NoError(t, o.check())
	assert.Equal(t, "localhost:443", o.addr)
	assert.Equal(t, "localhost", o.host)
	assert.Equal(t, "/x?y=1", o.path)
}
