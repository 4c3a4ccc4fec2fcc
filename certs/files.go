package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/internal/selfsigned"
)

// A KeyPair names a PEM certificate chain file and its private key file.
type KeyPair struct {
	CertFile string
	KeyFile  string
}

// Files are certificates loaded from PEM files, picked by the client's
// server name (SNI) and swapped whole by Reload.
type Files struct {
	pairs  []KeyPair
	strict bool
	set    atomic.Pointer[[]tls.Certificate]
	mu     sync.Mutex // one Reload at a time
}

var _ Source = (*Files)(nil)

// LoadFiles reads every pair; an error names the pair by its index
// (Field "[i]") and the file. With strict, a server name that no
// certificate covers, or none at all, gets no certificate (the
// unrecognized_name alert, as nginx's ssl_reject_handshake); otherwise it
// gets the first pair's.
func LoadFiles(pairs []KeyPair, strict bool) (*Files, error) {
	f := &Files{pairs: slices.Clone(pairs), strict: strict}
	certs, err := load(pairs)
	if err != nil {
		return nil, err
	}
	f.set.Store(&certs)
	return f, nil
}

// Development is an in-memory self-signed ECDSA P-256 certificate for
// localhost, 127.0.0.1 and ::1 (DevelopmentNames), valid a year, as
// Files (strict as LoadFiles's): for development only, no client trusts
// it. Reload keeps it.
func Development(strict bool) (*Files, error) {
	cert, err := selfsigned.New(365*24*time.Hour, selfsigned.DefaultHosts...)
	if err != nil {
		return nil, fmt.Errorf("certs: self-signed certificate: %w", err)
	}
	f := &Files{strict: strict}
	certs := []tls.Certificate{cert}
	f.set.Store(&certs)
	return f, nil
}

// DevelopmentNames are the names a Development certificate covers.
var DevelopmentNames = selfsigned.DefaultHosts

func load(pairs []KeyPair) ([]tls.Certificate, error) {
	certs := make([]tls.Certificate, 0, len(pairs))
	for i, p := range pairs {
		c, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			return nil, &field.Error{Pkg: "certs", Field: fmt.Sprintf("[%d]", i), Value: p.CertFile,
				Err: fmt.Errorf("certificate %s with key %s: %w", p.CertFile, p.KeyFile, err)}
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// Reload reads the files again and swaps the certificates in at once: new
// handshakes get the new ones, open connections keep theirs. If a file
// cannot be read or parsed, the certificates in use stay.
func (f *Files) Reload() error {
	if len(f.pairs) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	certs, err := load(f.pairs)
	if err != nil {
		return err
	}
	f.set.Store(&certs)
	return nil
}

// Len is how many certificates there are.
func (f *Files) Len() int { return len(*f.set.Load()) }

// Certificate picks the certificate for a ClientHello the way crypto/tls
// does for tls.Config.Certificates: the first the client supports (by
// name, then by key type and signature scheme), else the first; if
// strict, none (nil, nil).
func (f *Files) Certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.pick(hello, f.strict), nil
}

// CoversName reports whether a certificate covers the server name name
// (a DNS name, or an address), as its leaf's names say.
func (f *Files) CoversName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range *f.set.Load() {
		if leaf := leafOf(c); leaf != nil && leaf.VerifyHostname(name) == nil {
			return true
		}
	}
	return false
}

// Covering is the certificate that covers the client's server name, or
// nil: Certificate with strict.
func (f *Files) Covering(hello *tls.ClientHelloInfo) *tls.Certificate {
	return f.pick(hello, true)
}

func (f *Files) pick(hello *tls.ClientHelloInfo, strict bool) *tls.Certificate {
	certs := *f.set.Load()
	if len(certs) == 0 {
		return nil
	}
	if strict && hello.ServerName == "" {
		return nil // SupportsCertificate checks no name if none was sent
	}
	if len(certs) > 1 || strict {
		for i := range certs {
			if hello.SupportsCertificate(&certs[i]) == nil {
				return &certs[i]
			}
		}
		if strict {
			return nil
		}
	}
	return &certs[0]
}

// leafOf is c's leaf certificate, parsed if tls did not (it does since Go
// 1.23), or nil if it does not parse.
func leafOf(c tls.Certificate) *x509.Certificate {
	if c.Leaf != nil {
		return c.Leaf
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// An Expiry is when the certificate served for a name ends.
type Expiry struct {
	Name     string
	NotAfter time.Time
}

// expiries maps each name a certificate covers (DNS names, addresses,
// else the common name) to its end: for a name in several certificates,
// the first's, as SNI picks it.
func (f *Files) expiries(ends map[string]time.Time) {
	for _, c := range *f.set.Load() {
		leaf := leafOf(c)
		if leaf == nil {
			continue
		}
		names := slices.Clone(leaf.DNSNames)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
		for _, n := range names {
			if _, ok := ends[n]; !ok {
				ends[n] = leaf.NotAfter
			}
		}
	}
}

// Expiries lists, by name, the end of the certificate served for each
// name that files (either may be nil) or acme cover: for an ACME name,
// its ACME certificate once there is one.
func Expiries(files *Files, acme *ACME) []Expiry {
	ends := map[string]time.Time{}
	if files != nil {
		files.expiries(ends)
	}
	if acme != nil {
		for n, leaf := range acme.leaves() {
			ends[n] = leaf.NotAfter
		}
	}
	out := make([]Expiry, 0, len(ends))
	for n, t := range ends {
		out = append(out, Expiry{n, t})
	}
	slices.SortFunc(out, func(a, b Expiry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// A ConfigError reports an invalid field (as in "Domains", or "[1]" for
// the second of a list of files), the value given and what it accepts.
type ConfigError = field.Error
