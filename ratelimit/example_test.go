package ratelimit_test

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/ratelimit"
)

// Ten requests a second with a burst of five: six pass at once, the
// seventh is refused for a tenth of a second.
func ExampleLimiter_Allow() {
	rate, err := ratelimit.ParseRate("10/s")
	if err != nil {
		log.Fatal(err)
	}
	l, err := ratelimit.New(ratelimit.Config{Rate: rate, Burst: 5})
	if err != nil {
		log.Fatal(err)
	}
	client := l.AddrKey(netip.MustParseAddr("192.0.2.1"))
	now := time.Now()
	for i := 1; i <= 7; i++ {
		r, wait := l.Allow(client, now)
		fmt.Println(i, r, wait)
	}
	r, _ := l.Allow(client, now.Add(100*time.Millisecond))
	fmt.Println("100ms later:", r)
	// Output:
	// 1 passed 0s
	// 2 passed 0s
	// 3 passed 0s
	// 4 passed 0s
	// 5 passed 0s
	// 6 passed 0s
	// 7 limited 100ms
	// 100ms later: passed
}

// A handler limited to one request a minute per API key: the second
// gets 429 with Retry-After.
func ExampleLimiter_Handler() {
	l, err := ratelimit.New(ratelimit.Config{Rate: ratelimit.Rate{Count: 1, Per: time.Minute}, Header: "X-Api-Key"})
	if err != nil {
		log.Fatal(err)
	}
	h := l.Handler(func(ctx *fasthttp.RequestCtx) { ctx.WriteString("hello\n") })
	for range 2 {
		var ctx fasthttp.RequestCtx
		ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1)})
		ctx.Request.Header.Set("X-Api-Key", "k-123")
		h(&ctx)
		fmt.Printf("%d Retry-After=%q %s", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Retry-After"), ctx.Response.Body())
	}
	// Output:
	// 200 Retry-After="" hello
	// 429 Retry-After="60" Too Many Requests
}
