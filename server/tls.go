package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/internal/field"
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

// tlsState is the server's TLS: one tls.Config shared by every listener,
// so session ticket keys are shared too, and where its certificates come
// from (package certs).
type tlsState struct {
	cfg     *tls.Config
	files   *certs.Files      // the certificate files, or the development certificate; empty with ACME alone
	acme    *certs.ACME       // or nil; set by setUpACME once the listeners are bound
	source  certs.Source      // files, or files and acme (certs.Pick)
	tickets *certs.TicketKeys // or nil: session tickets disabled
	strict  bool              // StrictSNI

	reloadMu sync.Mutex // one reload at a time: certificates and keys from the same one
}

func newTLSState(c TLS, acme bool, logger *slog.Logger) (*tlsState, error) {
	ts := &tlsState{strict: c.StrictSNI}
	var err error
	switch {
	case len(c.Certificates) == 0 && acme:
		ts.files, err = certs.LoadFiles(nil, c.StrictSNI)
	case len(c.Certificates) == 0:
		ts.files, err = certs.Development(c.StrictSNI)
		logger.Warn("no certificate configured: serving an in-memory SELF-SIGNED certificate, for development only; clients will not trust it",
			"names", certs.DevelopmentNames)
	default:
		ts.files, err = certs.LoadFiles(c.Certificates, c.StrictSNI)
	}
	if err != nil {
		return nil, certsError("TLS.Certificates", err)
	}
	ts.source = ts.files
	ts.cfg = &tls.Config{
		MinVersion:             c.MinVersion,
		CipherSuites:           intermediateSuites,
		CurvePreferences:       intermediateCurves,
		NextProtos:             []string{"http/1.1", "http/1.0"},
		SessionTicketsDisabled: c.DisableSessionTickets,
		GetCertificate:         ts.certificate,
		GetConfigForClient:     watchHello,
	}
	if !c.DisableSessionTickets {
		if ts.tickets, err = certs.NewTicketKeys(ts.cfg, c.SessionTicketKeyFiles); err != nil {
			return nil, certsError("TLS.SessionTicketKeyFiles", err)
		}
		if c.StrictSNI {
			ts.cfg.WrapSession = ts.wrapWithName
			ts.cfg.UnwrapSession = ts.unwrapStrict
		}
	}
	return ts, nil
}

// sniTag starts the entry of SessionState.Extra that holds the server
// name a session was made for (Extra is shared: entries are tagged).
const sniTag = "fastserve-sni:"

// wrapWithName seals a session ticket with the server name it was made
// for, so that unwrapStrict can tell.
func (ts *tlsState) wrapWithName(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	ss.Extra = append(ss.Extra, []byte(sniTag+strings.ToLower(cs.ServerName)))
	return ts.cfg.EncryptTicket(cs, ss)
}

// unwrapStrict resumes a session only for the server name it was made for
// (RFC 6066 section 3), and one a certificate still covers, so that
// resumption obeys StrictSNI as a full handshake does: a ticket presented
// with another name, or none, falls back to a full handshake, which picks
// the name's certificate or refuses the name.
func (ts *tlsState) unwrapStrict(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	ss, err := ts.cfg.DecryptTicket(identity, cs)
	if ss == nil || err != nil {
		return ss, err
	}
	name := strings.ToLower(cs.ServerName)
	if !slices.ContainsFunc(ss.Extra, func(e []byte) bool { return string(e) == sniTag+name }) {
		return nil, nil
	}
	if !ts.files.CoversName(name) && (ts.acme == nil || !ts.acme.Manages(name)) {
		return nil, nil
	}
	return ss, nil
}

// certsError names, in a field error of package certs, the Config field
// it is about: "[1]" of TLS.Certificates is "TLS.Certificates[1]".
func certsError(prefix string, err error) error {
	var fe *field.Error
	if !errors.As(err, &fe) {
		return err
	}
	name := prefix
	if len(fe.Field) > 0 && fe.Field[0] == '[' {
		name += fe.Field
	} else if fe.Field != "" {
		name += "." + fe.Field
	}
	return &field.Error{Pkg: "server", Field: name, Value: fe.Value, Allowed: fe.Allowed, Err: fe.Err}
}

// certificate is the tls.Config's GetCertificate: the source's answer,
// and a note for the failure counters when it has none for the name.
func (ts *tlsState) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, err := ts.source.Certificate(hello)
	if err == nil {
		noteCertificate(hello, c != nil)
	}
	return c, err
}

// useACME serves the ACME names from a, beside the files, and answers
// TLS-ALPN-01 validations.
func (ts *tlsState) useACME(a *certs.ACME) {
	ts.acme = a
	ts.source = certs.Pick(a, ts.files, ts.strict)
	ts.cfg.NextProtos = append(ts.cfg.NextProtos, certs.ACMETLSProtocol)
}

// rotate rotates the session ticket keys made in process every d until
// ctx ends; keys from files are not rotated here.
func (ts *tlsState) rotate(ctx context.Context, d time.Duration) {
	if ts.tickets != nil && !ts.tickets.FromFiles() {
		ts.tickets.Run(ctx, d)
	}
}

// reload re-reads the certificate files and the session ticket key
// files, each part on its own: a part that fails keeps what it had, and
// never holds the other back (a broken key file does not keep a renewed
// certificate out).
func (ts *tlsState) reload() (certErr, keyErr error) {
	ts.reloadMu.Lock()
	defer ts.reloadMu.Unlock()
	if err := ts.files.Reload(); err != nil {
		certErr = certsError("TLS.Certificates", err)
	}
	if ts.tickets != nil {
		if keys, err := ts.tickets.Read(); err != nil {
			keyErr = certsError("TLS.SessionTicketKeyFiles", err)
		} else {
			ts.tickets.Set(keys)
		}
	}
	return certErr, keyErr
}
