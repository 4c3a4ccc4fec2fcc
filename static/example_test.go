package static_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/static"
)

// Serve a directory: the handler goes to server.New, or to any fasthttp
// server.
func ExampleNew() {
	root, err := os.MkdirTemp("", "www")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<h1>hello</h1>\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	files, err := static.New(static.Config{Root: root, DisableCompression: true})
	if err != nil {
		log.Fatal(err)
	}
	defer files.Close()

	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/")
	files.Handle(&ctx)
	fmt.Println(ctx.Response.StatusCode(), string(ctx.Response.Body()))
	// Output: 200 <h1>hello</h1>
}
