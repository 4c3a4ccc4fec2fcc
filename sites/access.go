package sites

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/bcrypt"
)

// Access says who may use a site or a route: by client address, then by
// HTTP basic authentication. A route's Access adds to its site's: a
// request must pass both.
type Access struct {
	// Allow, if set, admits only clients whose address is in one of
	// these prefixes ("10.0.0.0/8", "2001:db8::/32", or one address);
	// others get 403. Deny refuses the clients in its prefixes (403),
	// whatever Allow says. The address is the client's as the server
	// sees it (the PROXY protocol's, behind a balancer that sends it).
	Allow, Deny []string

	// BasicAuth maps user names to bcrypt hashes of their passwords
	// ("$2a$", "$2b$" or "$2y$", as htpasswd -nB makes them);
	// if set, a request without valid credentials gets 401 with
	// WWW-Authenticate. A password checked once is remembered (as a hash
	// of user and password), so bcrypt runs once per client credential,
	// not per request.
	BasicAuth map[string]string

	// Realm is the realm of WWW-Authenticate. If empty, "restricted".
	Realm string
}

// access is an Access ready to judge requests.
type access struct {
	allow, deny []netip.Prefix
	users       map[string][]byte // bcrypt hashes
	challenge   string            // WWW-Authenticate
	mu          sync.Mutex
	good        map[[32]byte]struct{} // credentials checked and right
}

// dummyHash is compared with for an unknown user; made on first use, not
// at start (bcrypt takes tens of milliseconds).
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("fastserve"), bcrypt.DefaultCost)
	return h
})

// maxRemembered bounds the credentials an access remembers; past it, the
// memory is dropped and filled again.
const maxRemembered = 1024

func newAccess(a Access) (*access, error) {
	if len(a.Allow) == 0 && len(a.Deny) == 0 && len(a.BasicAuth) == 0 {
		return nil, nil
	}
	ac := &access{}
	var err error
	if ac.allow, err = prefixes("allow", a.Allow); err != nil {
		return nil, err
	}
	if ac.deny, err = prefixes("deny", a.Deny); err != nil {
		return nil, err
	}
	if len(a.BasicAuth) > 0 {
		ac.users = make(map[string][]byte, len(a.BasicAuth))
		users := make([]string, 0, len(a.BasicAuth))
		for u := range a.BasicAuth {
			users = append(users, u)
		}
		sort.Strings(users)
		for _, u := range users {
			h := a.BasicAuth[u]
			if u == "" || strings.ContainsRune(u, ':') {
				return nil, fmt.Errorf("basic-auth: user %q: a user name is not empty and has no colon", u)
			}
			if _, err := bcrypt.Cost([]byte(h)); err != nil {
				return nil, fmt.Errorf("basic-auth: user %q: not a bcrypt hash (htpasswd -nB %s): %w", u, u, err)
			}
			ac.users[u] = []byte(h)
		}
		realm := a.Realm
		if realm == "" {
			realm = "restricted"
		}
		if strings.ContainsAny(realm, "\"\\\r\n") {
			return nil, fmt.Errorf("realm: %q may not hold quotes, backslashes or line breaks", realm)
		}
		ac.challenge = `Basic realm="` + realm + `", charset="UTF-8"`
		ac.good = make(map[[32]byte]struct{})
	}
	return ac, nil
}

func prefixes(field string, ss []string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%s: %q is neither an address nor a prefix (10.0.0.0/8)", field, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}

// admit judges ctx, and answers it (403 or 401) if it may not pass.
func (ac *access) admit(ctx *fasthttp.RequestCtx) bool {
	if ac == nil {
		return true
	}
	if len(ac.allow) > 0 || len(ac.deny) > 0 {
		ip, _ := netip.AddrFromSlice(ctx.RemoteIP())
		ip = ip.Unmap()
		if in(ac.deny, ip) || len(ac.allow) > 0 && !in(ac.allow, ip) {
			ctx.Error("Forbidden\n", fasthttp.StatusForbidden)
			return false
		}
	}
	if ac.users != nil && !ac.authorized(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) {
		ctx.Error("Unauthorized\n", fasthttp.StatusUnauthorized)
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, ac.challenge)
		return false
	}
	return true
}

func in(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// authorized checks an Authorization header's basic credentials.
func (ac *access) authorized(h []byte) bool {
	const scheme = "basic "
	if len(h) < len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return false
	}
	var buf [256]byte
	enc := bytes.TrimSpace(h[len(scheme):])
	if base64.StdEncoding.DecodedLen(len(enc)) > len(buf) {
		return false
	}
	n, err := base64.StdEncoding.Decode(buf[:], enc)
	if err != nil {
		return false
	}
	user, pass, ok := bytes.Cut(buf[:n], []byte{':'})
	if !ok {
		return false
	}
	hash, known := ac.users[string(user)]
	if !known {
		// As long as for a known user: the time does not tell.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), pass)
		return false
	}
	key := sha256.Sum256(buf[:n])
	ac.mu.Lock()
	_, good := ac.good[key]
	ac.mu.Unlock()
	if good {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, pass) != nil {
		return false
	}
	ac.mu.Lock()
	if len(ac.good) >= maxRemembered {
		clear(ac.good)
	}
	ac.good[key] = struct{}{}
	ac.mu.Unlock()
	return true
}
