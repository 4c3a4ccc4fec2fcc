package static_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/static"
)

// BenchmarkHandle: the handler's own cost for a small file kept in
// memory, plain and compressed (no network: the engine's cost is in
// bench/).
func BenchmarkHandle(b *testing.B) {
	root := b.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "assets", "css"), 0o755); err != nil {
		b.Fatal(err)
	}
	page := strings.Repeat("body { margin: 0 }\n", 200)
	if err := os.WriteFile(filepath.Join(root, "assets", "css", "site.css"), []byte(page), 0o644); err != nil {
		b.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a version kept in memory is a second old
	sf, err := static.New(static.Config{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	defer sf.Close()
	for _, enc := range []string{"identity", "br"} {
		b.Run("encoding="+enc, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			for b.Loop() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.SetRequestURI("/assets/css/site.css")
				ctx.Request.Header.Set("Accept-Encoding", enc)
				sf.Handle(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatal(ctx.Response.StatusCode())
				}
			}
		})
	}
}
