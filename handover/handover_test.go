//go:build unix

package handover_test

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/handover"
)

// logs collects a registry's log lines.
type logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func open(t *testing.T, path string, w io.Writer) *handover.Registry {
	t.Helper()
	r, err := handover.Open(path, slog.New(slog.NewTextHandler(w, nil)))
	require.NoError(t, err)
	t.Cleanup(r.Close)
	return r
}

// TestHandOver: the socket a registry offers reaches the next process's
// registry as the same socket: a connection queued on it before the
// hand-over, never accepted by the first, is accepted by the second.
func TestHandOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "handover.sock")
	a := open(t, path, io.Discard)
	prev, err := a.Serving()
	require.NoError(t, err)
	assert.Zero(t, prev, "a first start takes over from nobody")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	a.Add("web", "127.0.0.1:0", ln.(*net.TCPListener))
	require.NoError(t, a.Listen())

	queued, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer queued.Close()
	_, err = queued.Write([]byte("queued"))
	require.NoError(t, err)

	b := open(t, path, io.Discard)
	assert.Empty(t, b.Take("web", "127.0.0.1:1"), "another address is not this socket")
	files := b.Take("web", "127.0.0.1:0")
	require.Len(t, files, 1)
	lnB, err := net.FileListener(files[0])
	require.NoError(t, err)
	files[0].Close()
	defer lnB.Close()
	assert.Equal(t, ln.Addr(), lnB.Addr())
	prev, err = b.Serving()
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), prev, "the previous process's pid")

	select {
	case <-a.HandedOver():
	case <-time.After(5 * time.Second):
		t.Fatal("A was not told that B serves")
	}
	ln.Close() // A goes: the socket is B's alone now
	c, err := lnB.Accept()
	require.NoError(t, err)
	defer c.Close()
	got := make([]byte, 6)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, "queued", string(got))
}

// TestAbandon: a successor that takes the sockets and gives up before it
// serves leaves the old process serving, and free to hand over to the
// next one at once.
func TestAbandon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "handover.sock")
	al := &logs{}
	a := open(t, path, al)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	a.Add("web", "x", ln.(*net.TCPListener))
	require.NoError(t, a.Listen())

	b := open(t, path, io.Discard)
	require.Len(t, b.Take("web", "x"), 1) // and never closed: Abandon must not care
	b.Abandon()
	require.Eventually(t, func() bool { return bytes.Contains([]byte(al.String()), []byte("hand-over abandoned")) },
		2*time.Second, 5*time.Millisecond)

	c := open(t, path, io.Discard)
	require.Len(t, c.Take("web", "x"), 1)
	_, err = c.Serving()
	require.NoError(t, err)
	select {
	case <-a.HandedOver():
	case <-time.After(5 * time.Second):
		t.Fatal("A did not hand over to C")
	}
}

// TestClosedDeclines: a registry that is closed (its process drains)
// offers nothing; the asker starts as a first process.
func TestClosedDeclines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "handover.sock")
	a := open(t, path, io.Discard)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	a.Add("web", "x", ln.(*net.TCPListener))
	require.NoError(t, a.Listen())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "only the server's user may connect")
	a.Close()
	_, err = os.Lstat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "the socket file goes with the registry that made it")
	b := open(t, path, io.Discard)
	assert.Empty(t, b.Take("web", "x"))
}

// TestCloseKeepsOthersFile: Close removes only the socket file Listen
// made: not one that replaced it at the path.
func TestCloseKeepsOthersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "handover.sock")
	a := open(t, path, io.Discard)
	require.NoError(t, a.Listen())
	require.NoError(t, os.Remove(path))
	other, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	defer other.Close()
	a.Close()
	_, err = os.Lstat(path)
	assert.NoError(t, err, "another's socket file stays")
}

func TestNilRegistry(t *testing.T) {
	var r *handover.Registry
	assert.Nil(t, r.Take("web", "x"))
	r.Add("web", "x", nil)
	pid, err := r.Serving()
	assert.Zero(t, pid)
	assert.NoError(t, err)
	assert.NoError(t, r.Listen())
	assert.Nil(t, r.HandedOver())
	r.Abandon()
	r.Close()
}

// TestListenFails: a path the socket cannot be put at (here a directory)
// is an error, not a registry that listens where nobody looks.
func TestListenFails(t *testing.T) {
	// A directory at the path: not replaced, and said so.
	path := filepath.Join(t.TempDir(), "handover.sock")
	require.NoError(t, os.Mkdir(path, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(path, "x"), nil, 0o600))
	r := open(t, path, io.Discard)
	assert.ErrorContains(t, r.Listen(), "must be a free path or a hand-over socket")
	matches, _ := filepath.Glob(path + ".*.tmp")
	assert.Empty(t, matches, "the temporary socket is removed")

	// No directory to put the socket in.
	path = filepath.Join(t.TempDir(), "missing", "handover.sock")
	r = open(t, path, io.Discard)
	assert.ErrorContains(t, r.Listen(), "handover: "+path+" must be a path in an existing directory")
	matches, _ = filepath.Glob(path + ".*.tmp")
	assert.Empty(t, matches, "the temporary socket is removed")
}

// TestListenKeepsFiles: a file at the path is never replaced by the
// socket (before: a typo's path lost its file).
func TestListenKeepsFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "important.yaml")
	require.NoError(t, os.WriteFile(path, []byte("keep me\n"), 0o600))
	r := open(t, path, io.Discard)
	assert.ErrorContains(t, r.Listen(), "must be a free path or a hand-over socket")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "keep me\n", string(b))
}
