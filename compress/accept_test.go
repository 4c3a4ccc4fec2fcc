package compress

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestChoose: the coding chosen for an Accept-Encoding, weights and
// refusals included.
func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		accept []string // field lines
		want   coding
	}{
		{nil, identity},
		{[]string{""}, identity},
		{[]string{"identity"}, identity},
		{[]string{"deflate, compress"}, identity},
		{[]string{"gzip"}, gzipped},
		{[]string{"x-gzip"}, gzipped},
		{[]string{"GZip"}, gzipped},
		{[]string{"zstd"}, zstandard},
		{[]string{"br"}, brotli},
		{[]string{"gzip, deflate, br, zstd"}, brotli}, // a browser's: equal weights, br first
		{[]string{"gzip, zstd"}, zstandard},
		{[]string{"br;q=0.5, gzip"}, gzipped},
		{[]string{"br;q=0.5, gzip;q=0.4"}, brotli},
		{[]string{"zstd;q=1.0, br;q=0.999"}, zstandard},
		{[]string{"br ; q=0.8 , zstd;Q=0.9"}, zstandard},
		{[]string{"br;q=0"}, identity},
		{[]string{"br;q=0.000"}, identity},
		{[]string{"*"}, brotli},
		{[]string{"*;q=0.5, br;q=0.4"}, zstandard},
		{[]string{"gzip;q=0, *"}, brotli},
		{[]string{"br;q=0, zstd;q=0, *"}, gzipped},
		{[]string{"*;q=0"}, identity},
		{[]string{"*;q=0, gzip"}, gzipped},
		{[]string{"br, br;q=0"}, identity}, // listed twice: the refusal holds
		{[]string{"gzip", "br"}, brotli},   // two field lines
		{[]string{"br;q=2"}, identity},     // not a qvalue: the element is ignored
		{[]string{"br;q=1.5, gzip"}, gzipped},
		{[]string{"br;q=0.5x, gzip;q=0.1"}, gzipped},
		{[]string{"br;q=, gzip;q=0.1"}, gzipped},
		{[]string{"br;q=1.0000"}, identity},
		{[]string{"br;level=5"}, brotli}, // another parameter: no meaning
		{[]string{",,, ,br"}, brotli},
		{[]string{"brotli, gzip2, xgzip"}, identity},
	} {
		lines := make([][]byte, len(tc.accept))
		for i, l := range tc.accept {
			lines[i] = []byte(l)
		}
		assert.Equal(t, tc.want, choose(lines), "Accept-Encoding: %q", tc.accept)
	}
}

func TestQvalue(t *testing.T) {
	for v, want := range map[string]int{"0": 0, "1": 1000, "0.5": 500, "0.05": 50, "0.001": 1, "1.": 1000, "1.000": 1000, "0.": 0} {
		got, ok := qvalue([]byte(v))
		assert.True(t, ok, v)
		assert.Equal(t, want, got, v)
	}
	for _, v := range []string{"", "2", "1.001", "0.0001", ".5", "0,5", "-0", "0.a", "01"} {
		_, ok := qvalue([]byte(v))
		assert.False(t, ok, v)
	}
}

func TestTextual(t *testing.T) {
	for _, ct := range []string{
		"text/html", "text/html; charset=utf-8", "TEXT/CSS", "text/event-stream", "text/javascript",
		"application/json", "application/json;charset=utf-8", "application/problem+json", "application/vnd.api+json",
		"application/javascript", "application/x-javascript", "application/ecmascript", "application/xml",
		"application/atom+xml", "image/svg+xml", "application/xhtml+xml", "application/x-ndjson", "application/yaml",
		" application/JSON ",
	} {
		assert.True(t, textual([]byte(ct)), ct)
	}
	for _, ct := range []string{
		"", "text", "image/png", "image/jpeg", "application/octet-stream", "application/zip", "application/gzip",
		"video/mp4", "font/woff2", "application/pdf", "application/jsonx", "application/+json", "multipart/form-data",
	} {
		assert.False(t, textual([]byte(ct)), ct)
	}
}

// FuzzChoose: any Accept-Encoding chooses without panicking, and a coding
// chosen is one the field names, or "*".
func FuzzChoose(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br, zstd", "br;q=0.5, *;q=0", "x-gzip;q=1.000", ";;q=,", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		c := choose([][]byte{[]byte(accept)})
		if c == identity {
			return
		}
		lower := bytes.ToLower([]byte(accept))
		if !bytes.Contains(lower, []byte(c.String())) && !bytes.Contains(lower, []byte("*")) {
			t.Fatalf("%q chose %s", accept, c)
		}
	})
}
