package sites

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/headerlines"
	"github.com/fastserve/fastserve/internal/httpsyntax"
)

// HeaderRules change a message's headers: Delete first, then Set
// (replacing any value), then Add (one more line). Rules merge from the
// server (Config) to the site to the route: a site's rules add to the
// server's and a route's to its site's, a name set at a narrower level
// winning; nothing set at a wider level is dropped because a narrower
// one has rules (nginx's add_header inheritance silently drops them).
type HeaderRules struct {
	Set    map[string]string
	Add    map[string]string
	Delete []string
}

// headerOp is one compiled rule.
type headerOp struct {
	op          byte // 'd', 's', 'a'
	name, value string
	names       headerlines.Names // name, for 'd' and 's'
}

// rules is a compiled, merged list of operations, in the order applied.
type rules []headerOp

// merge compiles r over the wider rules: the result holds the wider
// ones but for the names r sets or deletes, then r's.
func (wider rules) merge(field string, r HeaderRules) (rules, error) {
	var own rules
	for _, name := range r.Delete {
		own = append(own, headerOp{op: 'd', name: name})
	}
	for _, m := range []struct {
		op byte
		kv map[string]string
	}{{'s', r.Set}, {'a', r.Add}} {
		names := make([]string, 0, len(m.kv))
		for name := range m.kv {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			v := m.kv[name]
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, fmt.Errorf("%s: %s: a value may not hold line breaks or NUL", field, name)
			}
			own = append(own, headerOp{op: m.op, name: name, value: v})
		}
	}
	for i := range own {
		if !validHeaderName(own[i].name) {
			return nil, fmt.Errorf("%s: %q is not a header name", field, own[i].name)
		}
		own[i].name = http.CanonicalHeaderKey(own[i].name)
		own[i].names = headerlines.Names(nil).Add([]byte(own[i].name))
		switch own[i].name {
		case "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "Te", "Trailer", "Keep-Alive":
			// The message's framing and hop-by-hop headers are the
			// server's and the proxy's to write: a rule would drop a
			// body or split a message.
			return nil, fmt.Errorf("%s: %s frames the message; a rule may not change it", field, own[i].name)
		}
	}
	var out rules
	for _, w := range wider {
		if !slices.ContainsFunc(own, func(o headerOp) bool { return o.op != 'a' && o.name == w.name }) {
			out = append(out, w)
		}
	}
	return append(out, own...), nil
}

// apply changes h, a request's or a response's header. Deletes keep the
// order of the lines left (headerlines), and find a name whatever its
// case: a proxied answer keeps its upstream's names as sent (the proxy
// turns normalising off), so an upstream's x-frame-options would stand
// beside a rule's X-Frame-Options, and a deleted X-Powered-By stay as
// x-powered-by.
func (rs rules) apply(h interface {
	Set(key, value string)
	Add(key, value string)
}) {
	for _, o := range rs {
		if o.op != 'a' {
			del(h, o.name, o.names)
		}
		switch o.op {
		case 's':
			h.Set(o.name, o.value)
		case 'a':
			h.Add(o.name, o.value)
		}
	}
}

// del deletes the lines of name (names, its headerlines.Names) from h.
// A request's header bytes are written into an array on the stack, for
// DelRequest, up to its size, only when the name is there.
func del(h any, name string, names headerlines.Names) {
	switch h := h.(type) {
	case *fasthttp.ResponseHeader:
		headerlines.DelResponse(h, names)
	case *fasthttp.RequestHeader:
		if len(h.PeekAll(name)) == 0 {
			return // a request's names are normalised: none there
		}
		var buf [2048]byte
		headerlines.DelRequest(h, h.AppendBytes(buf[:0]), names)
	}
}

// validHeaderName reports whether name is an HTTP token (RFC 9110).
func validHeaderName(name string) bool {
	for i := 0; i < len(name); i++ {
		if !httpsyntax.IsTokenChar(name[i]) {
			return false
		}
	}
	return name != ""
}
