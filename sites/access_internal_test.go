package sites

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// TestAccessLongestPrefix: an address in both lists is judged by the
// longer prefix that holds it, deny winning a tie, so that both of
// nginx's habits (allow one, deny all; deny some, allow all) read as
// meant.
func TestAccessLongestPrefix(t *testing.T) {
	for _, tc := range []struct {
		allow, deny []string
		admitted    map[string]bool
	}{
		{[]string{"127.0.0.1/32"}, []string{"0.0.0.0/0", "::/0"},
			map[string]bool{"127.0.0.1": true, "127.0.0.2": false, "::1": false}},
		{[]string{"0.0.0.0/0"}, []string{"10.0.0.0/8"},
			map[string]bool{"10.1.2.3": false, "11.0.0.1": true, "::1": false}},
		{[]string{"10.0.0.0/8"}, []string{"10.0.0.0/8"},
			map[string]bool{"10.1.2.3": false}},
		{nil, []string{"10.0.0.0/8"},
			map[string]bool{"10.1.2.3": false, "11.0.0.1": true}},
		{[]string{"10.0.0.0/8"}, nil,
			map[string]bool{"10.1.2.3": true, "11.0.0.1": false}},
	} {
		allow, err := prefixes("allow", tc.allow)
		require.NoError(t, err)
		deny, err := prefixes("deny", tc.deny)
		require.NoError(t, err)
		for addr, want := range tc.admitted {
			assert.Equal(t, want, !refused(allow, deny, netip.MustParseAddr(addr)), "allow %v deny %v: %s", tc.allow, tc.deny, addr)
		}
	}
}

// TestFrontedIgnoresAddresses: a client that sends an address as its TLS
// server name (wrk does; RFC 6066 forbids it) has named no site: its
// requests are not domain fronting.
func TestFrontedIgnoresAddresses(t *testing.T) {
	tr, err := build(Config{Sites: []Site{{Hosts: []string{"a.test"}, Handler: func(*fasthttp.RequestCtx) {}}}}, nil)
	require.NoError(t, err)
	a, ok := tr.hosts.Lookup([]byte("a.test"))
	require.True(t, ok)
	assert.False(t, tr.fronted("127.0.0.1", a))
	assert.False(t, tr.fronted("::1", a))
	assert.True(t, tr.fronted("b.test", a), "a name no site names stands for the default site")
}
