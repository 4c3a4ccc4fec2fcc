package certs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fastserve/fastserve/internal/field"
)

// TicketKeys keeps a tls.Config's session ticket keys: read from files
// that every instance serving the same clients shares (instances behind
// one balancer; the old and new process of a hand-over), as nginx's
// ssl_session_ticket_key, or made in process and rotated (Rotate, Run).
type TicketKeys struct {
	cfg   *tls.Config
	files []string

	mu   sync.Mutex
	keys [][32]byte // newest first
}

// KeepTicketKeys is how many keys rotation keeps: a ticket resumes a
// session for up to this many rotations.
const KeepTicketKeys = 4

// NewTicketKeys sets cfg's session ticket keys: from files if there are
// any (the first file's key encrypts new tickets, the others' only
// decrypt, so that a key can be retired in steps), else one key made now.
func NewTicketKeys(cfg *tls.Config, files []string) (*TicketKeys, error) {
	k := &TicketKeys{cfg: cfg, files: slices.Clone(files)}
	if len(files) == 0 {
		k.Rotate()
		return k, nil
	}
	keys, err := ReadTicketKeys(files)
	if err != nil {
		return nil, err
	}
	cfg.SetSessionTicketKeys(keys)
	return k, nil
}

// ReadTicketKeys reads session ticket key files, one key each, as nginx
// writes them: 48 bytes (a 16-byte name and two 16-byte AES-128 and HMAC
// keys) or 80 (two 32-byte keys). crypto/tls derives its own name and
// keys from a 32-byte secret: the secret is the SHA-256 of the file's
// bytes, so every process reading the file derives the same keys. An
// error names the file by its index (Field "[i]").
func ReadTicketKeys(files []string) ([][32]byte, error) {
	keys := make([][32]byte, 0, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && len(b) != 48 && len(b) != 80 {
			err = fmt.Errorf("%d bytes; a key file holds 48 or 80 random bytes: make one at a new path (openssl rand 80 > %s), and check that %s is the key file meant", len(b), newKeyPath(f), f)
		}
		if err != nil {
			return nil, &field.Error{Pkg: "certs", Field: fmt.Sprintf("[%d]", i), Value: f, Err: err}
		}
		keys = append(keys, sha256.Sum256(b))
	}
	return keys, nil
}

// newKeyPath is a path beside f for a new key file: never f itself, which
// may be another file given by mistake (a certificate).
func newKeyPath(f string) string {
	return filepath.Join(filepath.Dir(f), "ticket-"+time.Now().Format("20060102")+".key")
}

// FromFiles reports whether the keys come from files.
func (k *TicketKeys) FromFiles() bool { return len(k.files) > 0 }

// Read reads the key files again, for Set: nil keys when there are no
// files.
func (k *TicketKeys) Read() ([][32]byte, error) {
	if len(k.files) == 0 {
		return nil, nil
	}
	return ReadTicketKeys(k.files)
}

// Set puts keys that Read returned in use; nil changes nothing.
func (k *TicketKeys) Set(keys [][32]byte) {
	if keys != nil {
		k.cfg.SetSessionTicketKeys(keys)
	}
}

// Rotate makes a new key, which encrypts new tickets, and keeps the last
// KeepTicketKeys to accept older ones.
func (k *TicketKeys) Rotate() {
	var key [32]byte
	rand.Read(key[:])
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append([][32]byte{key}, k.keys...)
	if len(k.keys) > KeepTicketKeys {
		k.keys = k.keys[:KeepTicketKeys]
	}
	k.cfg.SetSessionTicketKeys(k.keys)
}

// Run rotates the keys every d until ctx ends.
func (k *TicketKeys) Run(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.Rotate()
		}
	}
}
