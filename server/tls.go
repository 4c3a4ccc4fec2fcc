package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastserve/fastserve/internal/selfsigned"
)

// Mozilla's "intermediate" TLS 1.2 suites (guideline 6.0): ECDHE with
// AES-GCM or ChaCha20-Poly1305. TLS 1.3 suites are not configurable in Go
// and are all AEAD.
var intermediateSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

var intermediateCurves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// certStore holds the certificates in use; Reload swaps it whole.
type certStore struct {
	certs []tls.Certificate
}

// get picks the certificate for a ClientHello the way crypto/tls does for
// Config.Certificates: the first the client supports (by name, then by
// key type and signature scheme), else the first; if strict, none.
func (cs *certStore) get(hello *tls.ClientHelloInfo, strict bool) *tls.Certificate {
	if len(cs.certs) == 0 {
		return nil // ACME only: certmagic answers
	}
	if strict && hello.ServerName == "" {
		return nil // SupportsCertificate checks no name if none was sent
	}
	if len(cs.certs) > 1 || strict {
		for i := range cs.certs {
			if hello.SupportsCertificate(&cs.certs[i]) == nil {
				return &cs.certs[i]
			}
		}
		if strict {
			return nil
		}
	}
	return &cs.certs[0]
}

// loadCertificates reads every pair; an error names the file.
func loadCertificates(files []CertFiles) (*certStore, error) {
	cs := &certStore{certs: make([]tls.Certificate, 0, len(files))}
	for i, f := range files {
		c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, &ConfigError{Pkg: "server", Field: fmt.Sprintf("TLS.Certificates[%d]", i), Value: f.CertFile,
				Err: fmt.Errorf("certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)}
		}
		cs.certs = append(cs.certs, c)
	}
	return cs, nil
}

// tlsState is the server's TLS: one tls.Config shared by every listener,
// so session ticket keys are shared too.
type tlsState struct {
	cfg      *tls.Config
	files    []CertFiles
	keyFiles []string
	strict   bool // StrictSNI
	store    atomic.Pointer[certStore]
	acme     *acmeState // or nil
	logger   *slog.Logger

	reloadMu sync.Mutex // one Reload at a time

	keysMu sync.Mutex
	keys   [][32]byte // newest first
}

func newTLSState(c TLS, acme bool, logger *slog.Logger) (*tlsState, error) {
	ts := &tlsState{files: c.Certificates, keyFiles: c.SessionTicketKeyFiles, strict: c.StrictSNI, logger: logger}
	var store *certStore
	switch {
	case len(c.Certificates) == 0 && acme:
		store = &certStore{}
	case len(c.Certificates) == 0:
		cert, err := selfsigned.New(365*24*time.Hour, selfsigned.DefaultHosts...)
		if err != nil {
			return nil, fmt.Errorf("server: self-signed certificate: %w", err)
		}
		store = &certStore{certs: []tls.Certificate{cert}}
		logger.Warn("no certificate configured: serving an in-memory SELF-SIGNED certificate, for development only; clients will not trust it",
			"names", selfsigned.DefaultHosts)
	default:
		var err error
		if store, err = loadCertificates(c.Certificates); err != nil {
			return nil, err
		}
	}
	ts.store.Store(store)
	ts.cfg = &tls.Config{
		MinVersion:             c.MinVersion,
		CipherSuites:           intermediateSuites,
		CurvePreferences:       intermediateCurves,
		NextProtos:             []string{"http/1.1"},
		SessionTicketsDisabled: c.DisableSessionTickets,
		GetCertificate:         ts.getCertificate,
		GetConfigForClient:     watchHello,
	}
	switch {
	case c.DisableSessionTickets:
	case len(c.SessionTicketKeyFiles) > 0:
		keys, err := readTicketKeys(c.SessionTicketKeyFiles)
		if err != nil {
			return nil, err
		}
		ts.cfg.SetSessionTicketKeys(keys)
	default:
		ts.rotateTicketKeys()
	}
	return ts, nil
}

// readTicketKeys reads session ticket key files, one key each, as nginx
// writes them: 48 bytes (a 16-byte name and two 16-byte AES-128 and HMAC
// keys) or 80 (two 32-byte keys). crypto/tls derives its own name and
// keys from a 32-byte secret: the secret is the SHA-256 of the file's
// bytes, so every process reading the file derives the same keys.
func readTicketKeys(files []string) ([][32]byte, error) {
	keys := make([][32]byte, 0, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && len(b) != 48 && len(b) != 80 {
			err = fmt.Errorf("%d bytes; a key file holds 48 or 80 random bytes (openssl rand 80 > %s)", len(b), f)
		}
		if err != nil {
			return nil, &ConfigError{Pkg: "server", Field: fmt.Sprintf("TLS.SessionTicketKeyFiles[%d]", i), Value: f, Err: err}
		}
		keys = append(keys, sha256.Sum256(b))
	}
	return keys, nil
}

// getCertificate picks the certificate for a ClientHello: certmagic
// answers TLS-ALPN-01 validations and the ACME domains, the files every
// other name (with no files and no strict SNI, the first ACME domain's
// certificate answers them). An ACME domain with no certificate yet gets
// a file that covers it, if one does; else the handshake fails. With no
// certificate and no error, crypto/tls sends the unrecognized_name alert
// (strict SNI).
func (ts *tlsState) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	store := ts.store.Load()
	if as := ts.acme; as != nil {
		if isChallenge(hello) {
			return as.magic.GetCertificate(hello)
		}
		if as.manages(hello.ServerName) || (len(store.certs) == 0 && !ts.strict) {
			c, err := as.certificate(hello)
			if err == nil {
				return c, nil
			}
			if fc := store.get(hello, true); fc != nil {
				return fc, nil
			}
			return nil, err
		}
	}
	cert := store.get(hello, ts.strict)
	if cert == nil {
		noteUnknownName(hello)
	}
	return cert, nil
}

// rotateTicketKeys makes a new session ticket key, which encrypts new
// tickets, and keeps the last few to accept older ones.
func (ts *tlsState) rotateTicketKeys() {
	var k [32]byte
	rand.Read(k[:])
	ts.keysMu.Lock()
	defer ts.keysMu.Unlock()
	ts.keys = append([][32]byte{k}, ts.keys...)
	if len(ts.keys) > sessionTicketKeys {
		ts.keys = ts.keys[:sessionTicketKeys]
	}
	ts.cfg.SetSessionTicketKeys(ts.keys)
}

// rotate rotates the ticket keys every d until ctx ends.
func (ts *tlsState) rotate(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ts.rotateTicketKeys()
		}
	}
}

// reload re-reads the certificate files and swaps them in at once. On an
// error the certificates in use stay.
func (ts *tlsState) reload() error {
	ts.reloadMu.Lock()
	defer ts.reloadMu.Unlock()
	var store *certStore
	var keys [][32]byte
	var err error
	if len(ts.files) > 0 {
		if store, err = loadCertificates(ts.files); err != nil {
			return err
		}
	}
	if len(ts.keyFiles) > 0 && !ts.cfg.SessionTicketsDisabled {
		if keys, err = readTicketKeys(ts.keyFiles); err != nil {
			return err
		}
	}
	// Both or neither.
	if store != nil {
		ts.store.Store(store)
	}
	if keys != nil {
		ts.cfg.SetSessionTicketKeys(keys)
	}
	return nil
}
