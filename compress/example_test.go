package compress_test

import (
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/compress"
)

// Compress an application's JSON answers for the clients that accept it.
func ExampleConfig_Handler() {
	api := func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("ETag", `"v7"`)
		ctx.SetBodyString(`{"items":[` + strings.Repeat(`{"name":"item","price":10},`, 100) + `{}]}`)
	}
	h := compress.Config{}.Handler(api)

	for _, accept := range []string{"gzip, deflate, br, zstd", "gzip;q=1, br;q=0.5", ""} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Accept-Encoding", accept)
		h(&ctx)
		fmt.Printf("%q: Content-Encoding %q, Vary %q, ETag %s, under 100 bytes: %t\n", accept,
			ctx.Response.Header.ContentEncoding(), ctx.Response.Header.Peek("Vary"),
			ctx.Response.Header.Peek("ETag"), len(ctx.Response.Body()) < 100)
	}
	// Output:
	// "gzip, deflate, br, zstd": Content-Encoding "br", Vary "Accept-Encoding", ETag W/"v7", under 100 bytes: true
	// "gzip;q=1, br;q=0.5": Content-Encoding "gzip", Vary "Accept-Encoding", ETag W/"v7", under 100 bytes: true
	// "": Content-Encoding "", Vary "Accept-Encoding", ETag "v7", under 100 bytes: false
}
