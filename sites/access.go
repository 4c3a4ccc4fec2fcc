package sites

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash/maphash"
	"net/netip"
	"runtime"
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
	// others get 403. Deny refuses the clients in its prefixes (403).
	// An address in both is judged by the longer prefix that holds it,
	// Deny winning a tie: Allow 127.0.0.1/32 with Deny 0.0.0.0/0 admits
	// 127.0.0.1 alone. The address is the client's as the server
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
	maxCost     int
	dummyOnce   sync.Once
	dummyHash   []byte
	challenge   string // WWW-Authenticate
	mu          sync.Mutex
	good, bad   map[[32]byte]struct{} // credentials checked, right and wrong
}

// dummy is the hash an unknown user's password is compared with, at the
// highest cost of the access's users' hashes, so that the time spent does
// not tell a user name exists; made on first use, not at start.
func (ac *access) dummy() []byte {
	ac.dummyOnce.Do(func() {
		ac.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("fastserve"), ac.maxCost)
	})
	return ac.dummyHash
}

// maxBcryptCost bounds a hash's cost: a cost of 14 is about a second of
// CPU per check here, and every wrong password costs one.
const maxBcryptCost = 14

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
			cost, err := bcrypt.Cost([]byte(h))
			if err != nil {
				return nil, fmt.Errorf("basic-auth: user %q: not a bcrypt hash (htpasswd -nB %s): %w", u, u, err)
			}
			if cost > maxBcryptCost {
				return nil, fmt.Errorf("basic-auth: user %q: a bcrypt cost of %d; at most %d (each check of a wrong password costs the server that much CPU)", u, cost, maxBcryptCost)
			}
			ac.maxCost = max(ac.maxCost, cost)
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
		ac.good, ac.bad = make(map[[32]byte]struct{}), make(map[[32]byte]struct{})
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
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("%s: %q mixes IPv6 and IPv4-mapped addresses; write the IPv4 prefix", field, s)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96) // clients' addresses are compared unmapped
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
		if refused(ac.allow, ac.deny, ip) {
			ctx.Error("Forbidden\n", fasthttp.StatusForbidden)
			return false
		}
	}
	if ac.users != nil && !ac.authorized(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization), ctx.RemoteIP()) {
		ctx.Error("Unauthorized\n", fasthttp.StatusUnauthorized)
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, ac.challenge)
		return false
	}
	return true
}

// refused judges ip by the longest prefix of allow and deny that holds
// it, deny winning a tie; an address neither holds is refused if allow
// names any. So both of nginx's habits read as meant: allow
// 127.0.0.1/32 with deny 0.0.0.0/0 admits 127.0.0.1 alone, and deny
// 10.0.0.0/8 with allow 0.0.0.0/0 admits all but 10.0.0.0/8.
func refused(allow, deny []netip.Prefix, ip netip.Addr) bool {
	a, d := longest(allow, ip), longest(deny, ip)
	if a < 0 && d < 0 {
		return len(allow) > 0
	}
	return d >= a
}

// longest is the length of the longest prefix of ps that holds ip, or -1.
func longest(ps []netip.Prefix, ip netip.Addr) int {
	n := -1
	for _, p := range ps {
		if p.Bits() > n && p.Contains(ip) {
			n = p.Bits()
		}
	}
	return n
}

// authorized checks an Authorization header's basic credentials, sent by
// the client at addr.
func (ac *access) authorized(h []byte, addr []byte) bool {
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
		hash = ac.dummy() // as long as for a known user: the time does not tell
	}
	key := sha256.Sum256(buf[:n])
	if right, ok := ac.remembered(key); ok {
		return right
	}
	// A client's checks wait for one another, so that a client that sends
	// a flood of wrong passwords waits behind its own, and each other
	// client's check waits for one of its checks at most; the same
	// credential sent on several connections at once is checked once.
	turn := &clientTurns[maphash.Bytes(turnSeed, addr)%uint64(len(clientTurns))]
	turn.Lock()
	defer turn.Unlock()
	if right, ok := ac.remembered(key); ok {
		return right
	}
	// bcrypt is the CPU a wrong password costs: at most half the CPUs
	// run it at once, and a credential found wrong is remembered, so a
	// flood of one wrong header costs one check.
	bcryptSlots <- struct{}{}
	right := bcrypt.CompareHashAndPassword(hash, pass) == nil && known
	<-bcryptSlots
	ac.mu.Lock()
	m := ac.bad
	if right {
		m = ac.good
	}
	if len(m) >= maxRemembered {
		clear(m)
	}
	m[key] = struct{}{}
	ac.mu.Unlock()
	return right
}

// remembered reports whether the credential of key was checked already,
// and what was found.
func (ac *access) remembered(key [sha256.Size]byte) (right, ok bool) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if _, good := ac.good[key]; good {
		return true, true
	}
	_, bad := ac.bad[key]
	return false, bad
}

// clientTurns has the bcrypt checks of one client address (or of the
// few that hash alike) run one at a time.
var (
	clientTurns [1024]sync.Mutex
	turnSeed    = maphash.MakeSeed()
)

// bcryptSlots bounds the bcrypt checks running at once, to half the CPUs.
var bcryptSlots = make(chan struct{}, max(runtime.GOMAXPROCS(0)/2, 1))
