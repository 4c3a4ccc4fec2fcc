package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/internal/netnstest"
)

// TestKeepAliveFlagsFindVanishedPeer: with the keep-alive flags alone (no
// --tcp-user-timeout), the built server closes a connection whose client
// vanished (no FIN, no RST reaches it) within idle + interval x count
// (+1 s), whether the connection was idle or had a response in flight:
// the user timeout follows keep-alive. Before, the default 110 s user
// timeout replaced the probe count and held the idle connection on.
// /debug/conns shows the bound the kernel will apply.
func TestKeepAliveFlagsFindVanishedPeer(t *testing.T) {
	p := netnstest.New(t)
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "big"), make([]byte, 32<<20), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "index.html"), []byte("hello"), 0o644))
	cmd := exec.Command("ip", "netns", "exec", p.A, binary, "serve", "--root", root,
		"--addr", netnstest.AddrA+":0", "--admin", "127.0.0.1:0",
		"--keepalive-idle", "1s", "--keepalive-interval", "1s", "--keepalive-count", "2")
	in := started(startCmd(t, cmd, childEnv(t)))
	const bound = 3 * time.Second // 1 + 1 x 2

	// The admin listener is on the loopback of the server's namespace.
	conns := func() (open int64, deadPeerAfter []float64) {
		var c net.Conn
		require.NoError(t, p.Do(p.A, func() (err error) {
			c, err = net.DialTimeout("tcp", in.admin, 2*time.Second)
			return err
		}))
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err := io.WriteString(c, "GET /debug/conns HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		var doc struct {
			Open  int64 `json:"open"`
			Conns []struct {
				Socket *struct {
					DeadPeerAfter float64 `json:"dead_peer_after_seconds"`
					UserTimeout   float64 `json:"user_timeout_seconds"`
				} `json:"socket"`
			} `json:"conns"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
		for _, ci := range doc.Conns {
			if ci.Socket != nil {
				deadPeerAfter = append(deadPeerAfter, ci.Socket.DeadPeerAfter)
				assert.Equal(t, 3.0, ci.Socket.UserTimeout, "the user timeout derived from keep-alive")
			}
		}
		return doc.Open, deadPeerAfter
	}

	// Two clients in the other namespace: one idle after a request, one
	// in the middle of a 32 MiB download it does not read.
	var idle, busy *rawConn
	require.NoError(t, p.Do(p.B, func() (err error) {
		if idle, err = dialErr(in.https, insecure); err != nil {
			return err
		}
		busy, err = dialErr(in.https, insecure)
		return err
	}))
	t.Cleanup(func() { idle.Close(); busy.Close() })
	idle.mustGet(t, "/")
	_, err := fmt.Fprintf(busy, "GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
	require.NoError(t, err)
	require.Eventually(t, func() bool { n, _ := conns(); return n == 2 }, 5*time.Second, 20*time.Millisecond)
	_, dpa := conns()
	assert.Equal(t, []float64{3, 3}, dpa, "/debug/conns: the bound for a dead peer")
	time.Sleep(200 * time.Millisecond) // the download fills the windows

	p.Vanish(t, p.B)
	gone := time.Now()
	for {
		open, _ := conns()
		if open == 0 {
			break
		}
		if time.Since(gone) > bound+time.Second {
			require.FailNowf(t, "vanished clients still connected", "%d open %v after the clients vanished; stderr:\n%s",
				open, time.Since(gone).Round(time.Millisecond), in.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(gone)
	t.Logf("both connections closed %v after the clients vanished (bound %v + 1 s)", took.Round(time.Millisecond), bound)
	assert.Greater(t, took, bound-time.Second, "not before keep-alive could have found them")
	assert.False(t, strings.Contains(in.log(), "panic"))
}
