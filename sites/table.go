package sites

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// maxHost is the longest host name (RFC 1035: 253 characters, and a
// trailing dot).
const maxHost = 254

// A Table maps host names to values of type T: exact names and wildcards
// of one label. Build it with Add; it is read-only once in use, and any
// number of goroutines may call Lookup.
type Table[T any] struct {
	exact map[string]T // lower-case names
	wild  map[string]T // "*.example.com" under "example.com"
}

// Add maps a host name to v: "example.com", or "*.example.com" for any one
// label before "example.com". Names are case-insensitive. It fails on an
// empty or malformed name, a port, or a name added twice.
func (t *Table[T]) Add(name string, v T) error {
	if err := t.add(name, v); err != nil {
		return fmt.Errorf("sites: host %q: %w", name, err)
	}
	return nil
}

// add is Add, with an error that does not repeat the name.
func (t *Table[T]) add(name string, v T) error {
	if t.exact == nil {
		t.exact, t.wild = make(map[string]T), make(map[string]T)
	}
	host := strings.ToLower(strings.TrimSuffix(name, "."))
	m, key := t.exact, host
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		m, key = t.wild, rest
	}
	if err := checkName(key); err != nil {
		return err
	}
	if strings.HasPrefix(key, "[") {
		key = canonicalIPv6(key) // checkName parsed it
	}
	if _, dup := m[key]; dup {
		return errNamedTwice
	}
	m[key] = v
	return nil
}

var errNamedTwice = errors.New("named twice (a host belongs to one site)")

// checkName accepts a DNS name (letters, digits, hyphens and dots; no
// empty label) or an IP address literal.
func checkName(s string) error {
	if s == "" || len(s) > maxHost-1 {
		return fmt.Errorf("a host name has 1 to %d characters", maxHost-1)
	}
	if strings.HasPrefix(s, "[") { // an IPv6 literal, as a Host header writes it
		if a, err := netip.ParseAddr(strings.TrimSuffix(s[1:], "]")); err != nil || !strings.HasSuffix(s, "]") || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("an IPv6 address is written [addr], without a port or zone")
		}
		return nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			// Clients send an internationalized name in its ASCII form.
			if a, err := idna.Lookup.ToASCII(s); err == nil {
				return fmt.Errorf("not ASCII: write the name as clients send it, %s", a)
			}
			return fmt.Errorf("not ASCII: write an internationalized name in its ASCII (punycode, xn--) form")
		}
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return fmt.Errorf("empty label")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q is not allowed in a host name (a port goes in the listen address, a wildcard only as the first label, \"*.\")", c)
			}
		}
	}
	return nil
}

// Lookup finds the value for a Host header's value: the port is
// stripped, case and a trailing dot ignored; an exact name wins over a
// wildcard. It allocates nothing.
func (t *Table[T]) Lookup(host []byte) (v T, ok bool) {
	var buf [maxHost]byte
	h, fits := normalize(buf[:0], host)
	if !fits {
		return v, false
	}
	if len(h) > 0 && h[0] == '[' {
		// IPv6 literals have many spellings ([0:0::1], [::1]): the
		// table holds the canonical one.
		v, ok = t.exact[canonicalIPv6(string(h))]
		return v, ok
	}
	if v, ok = t.exact[string(h)]; ok {
		return v, true
	}
	if i := bytes.IndexByte(h, '.'); i > 0 && h[0] != '[' {
		v, ok = t.wild[string(h[i+1:])]
	}
	return v, ok
}

// Len is the number of names in t.
func (t *Table[T]) Len() int { return len(t.exact) + len(t.wild) }

// normalize appends host to dst lower-cased, without its port and a
// trailing dot; it reports false for a host longer than a name can be.
func normalize(dst, host []byte) ([]byte, bool) {
	if len(host) > 0 && host[0] == '[' { // [v6]:port
		if end := bytes.IndexByte(host, ']'); end > 0 {
			host = host[:end+1]
		}
	} else if i := bytes.IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	if len(host) > cap(dst) {
		return dst, false
	}
	for _, c := range host {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// canonicalIPv6 is the canonical spelling of a bracketed IPv6 literal,
// or s itself if it is not one.
func canonicalIPv6(s string) string {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return s
	}
	return "[" + a.String() + "]"
}
