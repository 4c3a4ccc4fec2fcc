package compress_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/compress"
)

// TestCompressKeepsLineOrder: compressing deletes Vary, ETag and
// Accept-Ranges lines, and the lines of another name keep their order
// (fasthttp's Del fills its hole with the header's last line: the
// proxy's answer got its Link lines back to front).
func TestCompressKeepsLineOrder(t *testing.T) {
	for _, tc := range []struct{ name, line string }{
		{"vary", "Vary: Origin"},
		{"etag", `ETag: "x"`},
		{"accept-ranges", "Accept-Ranges: bytes"},
	} {
		for _, status := range []int{fasthttp.StatusOK, fasthttp.StatusNotModified} {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.Set(fasthttp.HeaderAcceptEncoding, "gzip")
			ctx.Request.Header.Set(fasthttp.HeaderIfNoneMatch, `W/"x"`)
			h := &ctx.Response.Header
			h.DisableNormalizing() // as the proxy reads an upstream's answer
			k, v, _ := strings.Cut(tc.line, ": ")
			h.Add(k, v)
			if tc.name != "vary" {
				h.Add("Vary", "Accept-Encoding") // no Vary line added at the end
			}
			h.Add("Link", "<a>")
			h.Add("link", "<b>")
			h.Add("Link", "<c>")
			ctx.SetStatusCode(status)
			if status == fasthttp.StatusOK {
				h.SetContentType("text/plain")
				ctx.SetBody([]byte(strings.Repeat("x", 2048)))
			}
			compress.Config{}.Response(&ctx)
			var links []string
			for k, v := range h.All() {
				if strings.EqualFold(string(k), "link") {
					links = append(links, string(v))
				}
			}
			assert.Equal(t, []string{"<a>", "<b>", "<c>"}, links, "%s, status %d: %s", tc.name, status, h.String())
		}
	}
}
