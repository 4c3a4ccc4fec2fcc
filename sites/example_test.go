package sites_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/sites"
)

// Two sites on one server: each Host gets its own files; any other host
// the default site.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "sites")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, name := range []string{"default", "example"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "index.html"), []byte(name), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	r, err := sites.New(sites.Config{
		Default: sites.Site{Root: filepath.Join(dir, "default")},
		Sites:   []sites.Site{{Hosts: []string{"example.com", "*.example.com"}, Root: filepath.Join(dir, "example")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for _, host := range []string{"www.example.com", "other.test"} {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/")
		ctx.Request.Header.SetHost(host)
		r.Handle(&ctx)
		fmt.Println(host, string(ctx.Response.Body()))
	}
	// Output:
	// www.example.com example
	// other.test default
}
