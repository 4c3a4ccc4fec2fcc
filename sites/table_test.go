package sites_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/sites"
)

func TestLookup(t *testing.T) {
	var tb sites.Table[string]
	for name, site := range map[string]string{
		"example.com": "example", "www.example.com": "www", "*.example.com": "wild",
		"API.Example.org.": "api", "127.0.0.1": "ip4", "[::1]": "ip6", "*.b.example.net": "deep",
	} {
		require.NoError(t, tb.Add(name, site))
	}
	for host, want := range map[string]string{
		"example.com": "example", "EXAMPLE.COM": "example", "example.com:8443": "example", "example.com.": "example",
		"www.example.com": "www", "a.example.com": "wild", "A.Example.Com:443": "wild",
		"a.b.example.com": "", "xexample.com": "", "": "", ":443": "",
		"api.example.org": "api", "127.0.0.1:8443": "ip4", "127.0.0.1": "ip4", "[::1]:8443": "ip6", "[::1]": "ip6",
		"x.b.example.net": "deep", "b.example.net": "",
		"[0:0::1]:8443": "ip6", "[0000::0001]": "ip6", // one address, many spellings
	} {
		got, ok := tb.Lookup([]byte(host))
		assert.Equal(t, want != "", ok, "%q", host)
		assert.Equal(t, want, got, "%q", host)
	}
	assert.Equal(t, 7, tb.Len())
}

func TestAddRefuses(t *testing.T) {
	var tb sites.Table[int]
	require.NoError(t, tb.Add("example.com", 1))
	for name, msg := range map[string]string{
		"Example.COM":     "named twice",
		"":                "1 to 253 characters",
		"example.com:443": "not allowed",
		"a..b":            "empty label",
		"*.*.example.com": "not allowed",
		"a.*.example.com": "not allowed",
		"exa mple.com":    "not allowed",
		"[::1":            "[addr]",
		"[not an ip]":     "[addr]",
		"[127.0.0.1]":     "[addr]",
	} {
		err := tb.Add(name, 2)
		assert.ErrorContains(t, err, msg, "%q", name)
	}
}

// BenchmarkLookup: one map lookup, no allocation, with 1 site or 1,000
// (exact and wildcard names alike).
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1, 1000} {
		var tb sites.Table[int]
		for i := range n {
			if err := tb.Add(fmt.Sprintf("site%d.example.com", i), i); err != nil {
				b.Fatal(err)
			}
			if err := tb.Add(fmt.Sprintf("*.site%d.example.net", i), i); err != nil {
				b.Fatal(err)
			}
		}
		for _, host := range []string{"site0.example.com:443", "Www.Site0.Example.Net"} {
			b.Run(fmt.Sprintf("sites=%d/host=%s", n, host), func(b *testing.B) {
				h := []byte(host)
				b.ReportAllocs()
				for b.Loop() {
					if _, ok := tb.Lookup(h); !ok {
						b.Fatal("no site")
					}
				}
			})
		}
	}
}

// TestAddNonASCII: an internationalized name is refused with the ASCII
// form clients send (a Host header is ASCII), to write instead.
func TestAddNonASCII(t *testing.T) {
	var tb sites.Table[string]
	err := tb.Add("bücher.example", "x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "xn--bcher-kva.example")
	require.NoError(t, tb.Add("xn--bcher-kva.example", "x"))
	v, ok := tb.Lookup([]byte("XN--BCHER-KVA.example"))
	assert.True(t, ok)
	assert.Equal(t, "x", v)
}
