package handover

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain runs the peer of TestPeerAllowed when asked to: a process of
// another user that dials the socket and waits.
func TestMain(m *testing.M) {
	if path := os.Getenv("HANDOVER_TEST_DIAL"); path != "" {
		c, err := net.Dial("unix", path)
		if err != nil {
			os.Exit(3)
		}
		time.Sleep(5 * time.Second)
		c.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestPeerAllowed: root may take the sockets of a process of another user
// (the README's promise), and such a process may not take root's (before:
// the check ran the same both ways, so a root successor refused the
// sockets a fsuser server offered, with a message naming the wrong side).
func TestPeerAllowed(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a peer as another user")
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755)) // t.TempDir makes both 0700
	require.NoError(t, os.Chmod(dir, 0o755))
	path := filepath.Join(dir, "peer.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ln.Close()
	require.NoError(t, os.Chmod(path, 0o777))
	bin := filepath.Join(dir, "peer.test") // where the other user may run it
	b, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))
	cmd := exec.Command(bin, "-test.run", "^$")
	cmd.Env = append(os.Environ(), "HANDOVER_TEST_DIAL="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	require.NoError(t, cmd.Start())
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	require.NoError(t, ln.(*net.UnixListener).SetDeadline(time.Now().Add(5*time.Second)))
	c, err := ln.Accept()
	require.NoError(t, err, "the peer of uid 65534 dialed")
	defer c.Close()

	_, err = peerAllowed(c.(*net.UnixConn), true)
	assert.ErrorContains(t, err, "of uid 65534 may not take the sockets of uid 0", "another user may not take root's sockets")
	pid, err := peerAllowed(c.(*net.UnixConn), false)
	assert.NoError(t, err, "root may take another user's sockets")
	assert.Equal(t, cmd.Process.Pid, pid)
}
