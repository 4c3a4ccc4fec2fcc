package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/fastserve/fastserve/internal/field"
)

// ACMEConfig configures certificates that the server obtains and renews by
// itself from an ACME certificate authority (RFC 8555; Let's Encrypt by
// default), with github.com/caddyserver/certmagic. The CA checks that the
// server controls each name with the TLS-ALPN-01 challenge, answered on
// the HTTPS listener itself (the CA connects to port 443, so it must be
// reached there), and, when the server has a plain-HTTP listener (the
// engine's RedirectAddr), with the HTTP-01 challenge, answered there
// (reached on port 80).
//
// Certificates, their keys and the CA account live in Storage. Several
// processes that share Storage (on one host, or on a shared file system)
// share the certificates: a lock in Storage lets one of them order a
// certificate while the others wait and load it, and each can answer the
// challenges of the others' orders.
//
// Using ACME means agreeing to the CA's subscriber agreement.
type ACMEConfig struct {
	// Domains are the DNS names to obtain a certificate for, one
	// certificate each. A client whose server name (SNI) is one of them
	// gets its certificate; other names get the certificate files. Wildcards
	// are not allowed: they need the DNS-01 challenge, which the server
	// does not answer. If empty, ACME is off and every other field must be
	// zero.
	Domains []string

	// Email is given to the CA with the account, for its notices (expiry
	// warnings, incidents). If empty, the account has no contact.
	Email string

	// CA is the URL of the CA's ACME directory. If empty, DefaultACMECA,
	// Let's Encrypt's production CA; try LetsEncryptStagingCA first, whose
	// rate limits are far higher and whose certificates no browser trusts.
	CA string

	// CARoots, if set, are the roots trusted for the CA's own HTTPS, in
	// place of the system's: for a private CA (step-ca) or a test CA.
	CARoots *x509.CertPool

	// CARootFile, if set, is a PEM file of root certificates trusted for
	// the CA's own HTTPS, added to CARoots (in place of the system's).
	CARootFile string

	// Storage is the directory that holds the account, the keys, the
	// certificates and the locks; it is made (mode 0700) if missing. If
	// empty, DefaultACMEStorage().
	Storage string

	// RenewalWindowRatio is the part of a certificate's lifetime, counted
	// back from its expiry, in which it is renewed; a renewal the CA
	// suggests earlier (ACME Renewal Information) is followed. If zero,
	// 1/3: 30 days before the end of a 90-day certificate.
	RenewalWindowRatio float64

	// RenewCheckInterval is how often certificates are checked for
	// renewal. If zero, certmagic's 10 minutes.
	RenewCheckInterval time.Duration
}

// ACME directories.
const (
	DefaultACMECA        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStagingCA = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// DefaultACMEStorage is where ACME keeps its state if ACME.Storage is
// empty: fastserve/acme under $XDG_STATE_HOME, or else under
// ~/.local/state. It is empty if neither is known.
func DefaultACMEStorage() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "fastserve", "acme")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".local", "state", "fastserve", "acme")
}

// Enabled reports whether there are names to obtain certificates for.
func (a ACMEConfig) Enabled() bool { return len(a.Domains) > 0 }

// WithDefaults returns a with its domains normalized and every zero
// field set to its default, and reports every invalid field, as
// *field errors of package certs, joined.
func (a ACMEConfig) WithDefaults() (ACMEConfig, error) {
	var errs []error
	bad := func(name string, v any, allowed string) {
		errs = append(errs, &field.Error{Pkg: "certs", Field: name, Value: v, Allowed: allowed})
	}
	if !a.Enabled() {
		if a.Email != "" || a.CA != "" || a.CARoots != nil || a.CARootFile != "" || a.Storage != "" || a.RenewalWindowRatio != 0 {
			bad("Domains", "none", "at least one name when another ACME field is set")
		}
		return a, errors.Join(errs...)
	}
	domains := make([]string, 0, len(a.Domains))
	for _, d := range a.Domains {
		n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		switch {
		case strings.Contains(n, "*"):
			bad("Domains", fmt.Sprintf("%q", d), "DNS names without wildcards (a wildcard needs the DNS-01 challenge, which the server does not answer)")
		case !validDNSName(n):
			bad("Domains", fmt.Sprintf("%q", d), "DNS names such as example.com, not addresses")
		case slices.Contains(domains, n):
			bad("Domains", fmt.Sprintf("%q", d), "each name once")
		default:
			domains = append(domains, n)
		}
	}
	a.Domains = domains
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n<>")) {
		bad("Email", fmt.Sprintf("%q", a.Email), "an email address such as ops@example.com, or empty for none")
	}
	if a.CA == "" {
		a.CA = DefaultACMECA
	}
	if !strings.HasPrefix(a.CA, "https://") || len(a.CA) == len("https://") {
		bad("CA", fmt.Sprintf("%q", a.CA), "the https:// URL of an ACME directory")
	}
	if a.Storage == "" {
		a.Storage = DefaultACMEStorage()
		if a.Storage == "" {
			bad("Storage", `""`, "a directory (no $XDG_STATE_HOME nor home directory to put one in)")
		}
	}
	if a.RenewalWindowRatio < 0 || a.RenewalWindowRatio >= 1 {
		bad("RenewalWindowRatio", a.RenewalWindowRatio, "above 0 and below 1, or 0 for 1/3")
	}
	if a.RenewCheckInterval < 0 {
		bad("RenewCheckInterval", a.RenewCheckInterval, "a positive duration, or 0 for 10m")
	}
	return a, errors.Join(errs...)
}

// validDNSName reports whether n is a lower-case DNS name of two labels or
// more (letters, digits, hyphens), not an IP address.
func validDNSName(n string) bool {
	if len(n) == 0 || len(n) > 253 || net.ParseIP(n) != nil {
		return false
	}
	labels := strings.Split(n, ".")
	if len(labels) < 2 {
		return n == "localhost" // for a private CA
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// LoadRoots returns the pool to trust for the CA's HTTPS, or nil for the
// system's.
func (a ACMEConfig) LoadRoots() (*x509.CertPool, error) {
	if a.CARootFile == "" {
		return a.CARoots, nil
	}
	pool := x509.NewCertPool()
	if a.CARoots != nil {
		pool = a.CARoots.Clone()
	}
	b, err := os.ReadFile(a.CARootFile)
	if err == nil && !pool.AppendCertsFromPEM(b) {
		err = errors.New("no PEM certificate in it")
	}
	if err != nil {
		return nil, &field.Error{Pkg: "certs", Field: "CARootFile", Value: a.CARootFile, Err: fmt.Errorf("CA root file %s: %w", a.CARootFile, err)}
	}
	return pool, nil
}

// ACMETLSProtocol is the ALPN protocol of TLS-ALPN-01 validations: a
// server that answers them offers it, and ends a handshake that chose it.
const ACMETLSProtocol = acmez.ACMETLS1Protocol

// ACME obtains and renews certificates from an ACME CA with certmagic,
// and serves them (Certificate). Make one with NewACME; Start it once the
// server's listeners answer the challenges.
type ACME struct {
	domains []string
	magic   *certmagic.Config
	cache   *certmagic.Cache
	issuer  *certmagic.ACMEIssuer
	log     *slog.Logger

	failures map[string]*atomic.Uint64 // by domain; fixed after newACME

	mu      sync.Mutex
	cancel  context.CancelFunc // stops management; nil until start
	stopped bool
}

// NewACME sets up certmagic on the Storage directory of a (with its
// defaults, WithDefaults) for a server whose TLS listener is tlsAddr and
// whose plain-HTTP listener, if any, is httpAddr: the CA's validations
// are answered there (TLS-ALPN-01 by the server's handshakes offering
// ACMETLSProtocol, HTTP-01 by HTTPChallenge). If only, there are no
// certificate files: a name that is not a domain gets the first domain's
// certificate. Nothing is ordered until Start.
func NewACME(a ACMEConfig, tlsAddr, httpAddr net.Addr, only bool, logger *slog.Logger) (*ACME, error) {
	roots, err := a.LoadRoots()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(a.Storage, 0o700); err != nil {
		return nil, &field.Error{Pkg: "certs", Field: "Storage", Value: a.Storage, Err: fmt.Errorf("ACME storage: %w", err)}
	}
	as := &ACME{
		domains:  a.Domains,
		log:      logger,
		failures: make(map[string]*atomic.Uint64, len(a.Domains)),
	}
	for _, d := range a.Domains {
		as.failures[d] = new(atomic.Uint64)
	}
	zl := newZapLogger(logger.With("from", "certmagic"))
	as.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return as.magic, nil },
		RenewCheckInterval: a.RenewCheckInterval,
		Logger:             zl,
	})
	as.magic = certmagic.New(as.cache, certmagic.Config{
		RenewalWindowRatio: a.RenewalWindowRatio,
		Storage:            &certmagic.FileStorage{Path: a.Storage},
		Logger:             zl,
		OnEvent:            as.onEvent,
	})
	if only {
		as.magic.DefaultServerName = a.Domains[0]
		as.magic.FallbackServerName = a.Domains[0]
	}
	tcp := tlsAddr.(*net.TCPAddr)
	iss := certmagic.ACMEIssuer{
		CA:             a.CA,
		Email:          a.Email,
		Agreed:         true,
		TrustedRoots:   roots,
		AltTLSALPNPort: tcp.Port,
		Logger:         zl,
	}
	// certmagic binds the challenge ports itself when it finds them free;
	// ListenHost is the host the server listens on, so that it finds them
	// taken, by the server, which answers.
	if !tcp.IP.IsUnspecified() {
		iss.ListenHost = tcp.IP.String()
	}
	if httpAddr != nil {
		iss.AltHTTPPort = httpAddr.(*net.TCPAddr).Port
	} else {
		iss.DisableHTTPChallenge = true
	}
	as.issuer = certmagic.NewACMEIssuer(as.magic, iss)
	as.magic.Issuers = []certmagic.Issuer{as.issuer}
	return as, nil
}

// onEvent logs what certmagic did to a certificate and counts failures.
func (as *ACME) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	switch event {
	case "cert_obtained":
		renewal, _ := data["renewal"].(bool)
		as.log.Info("ACME certificate obtained", "name", name, "renewal", renewal)
	case "cert_failed":
		renewal, _ := data["renewal"].(bool)
		if n := as.failures[name]; n != nil {
			n.Add(1)
		}
		as.log.Error("ACME certificate not obtained; retrying with back-off, serving on", "name", name, "renewal", renewal, "err", data["error"])
	case "cached_managed_cert":
		as.log.Info("ACME certificate ready", "names", data["sans"])
	}
	return nil
}

// Start begins obtaining, loading and renewing the certificates in the
// background; Stop ends it.
func (as *ACME) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	as.mu.Lock()
	if as.stopped {
		as.mu.Unlock()
		cancel()
		return
	}
	as.cancel = cancel
	as.mu.Unlock()
	as.log.Info("ACME: managing certificates", "names", as.domains, "ca", as.issuer.CA, "storage", as.storage())
	if err := as.magic.ManageAsync(ctx, as.domains); err != nil {
		as.log.Error("ACME: certificates not managed", "err", err)
	}
}

func (as *ACME) storage() string {
	if fs, ok := as.magic.Storage.(*certmagic.FileStorage); ok {
		return fs.Path
	}
	return ""
}

// Stop ends management, renewals and retries: an order in flight is
// abandoned. It may be called more than once, and before Start.
func (as *ACME) Stop() {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.stopped {
		return
	}
	as.stopped = true
	if as.cancel != nil {
		as.cancel()
	}
	as.cache.Stop()
}

// Manages reports whether name (as sent in SNI) is one of the domains.
func (as *ACME) Manages(name string) bool {
	return slices.Contains(as.domains, strings.TrimSuffix(strings.ToLower(name), "."))
}

// IsChallenge reports whether hello is a TLS-ALPN-01 validation: it
// offers acme-tls/1 alone (RFC 8737).
func IsChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol
}

// errNoCertificateYet fails the handshake of a client asking for an ACME
// name before its first certificate is there.
var errNoCertificateYet = errors.New("certs: no certificate for this name yet: ACME issuance in progress")

// Certificate returns the certificate of the client's server name from
// certmagic's cache, or an error if there is none yet.
func (as *ACME) Certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, err := as.magic.GetCertificate(hello)
	if err != nil || c == nil || len(c.Certificate) == 0 {
		return nil, errNoCertificateYet
	}
	return c, nil
}

// leaves returns the leaf certificate of each domain that has one.
func (as *ACME) leaves() map[string]*x509.Certificate {
	m := make(map[string]*x509.Certificate, len(as.domains))
	for _, d := range as.domains {
		var best *x509.Certificate
		for _, c := range as.cache.AllMatchingCertificates(d) {
			if c.Leaf != nil && (best == nil || c.Leaf.NotAfter.After(best.NotAfter)) {
				best = c.Leaf
			}
		}
		if best != nil {
			m[d] = best
		}
	}
	return m
}

// WritePrometheus writes the failed orders and renewals of every domain,
// as fastserve_acme_renewal_failures_total{name="..."}.
func (as *ACME) WritePrometheus(w io.Writer) {
	for _, d := range as.domains {
		fmt.Fprintf(w, "fastserve_acme_renewal_failures_total{name=%s} %d\n", strconv.Quote(d), as.failures[d].Load())
	}
}

// acmeChallengePrefix is where HTTP-01 tokens are asked for (RFC 8555
// section 8.3).
const acmeChallengePrefix = "/.well-known/acme-challenge/"

// HTTPChallenge answers HTTP-01 validations (certmagic finds the token in
// memory or, for another process's order, in Storage) and passes every
// other request to next: the handler of the plain-HTTP listener.
func (as *ACME) HTTPChallenge(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	solve := fasthttpadaptor.NewFastHTTPHandler(as.issuer.HTTPChallengeHandler(http.NotFoundHandler()))
	return func(ctx *fasthttp.RequestCtx) {
		if strings.HasPrefix(string(ctx.Path()), acmeChallengePrefix) && ctx.IsGet() {
			solve(ctx)
			return
		}
		next(ctx)
	}
}

var _ Source = (*ACME)(nil)
