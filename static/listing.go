package static

import (
	"fmt"
	"html"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"
)

// list answers a directory without an index file with a listing of its
// entries, dotfiles left out unless they are served; directories first,
// each with a slash.
func (sf *Files) list(ctx *fasthttp.RequestCtx, dir string) {
	name := strings.TrimSuffix(dir, "/")
	if name == "" {
		name = "."
	}
	f, err := sf.root.Open(name)
	if err != nil {
		sf.openFailed(ctx, err)
		return
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		sf.openFailed(ctx, err)
		return
	}
	slices.SortFunc(entries, func(a, b os.DirEntry) int {
		if a.IsDir() != b.IsDir() {
			if a.IsDir() {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name(), b.Name())
	})
	title := html.EscapeString("/" + dir)
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>\n<body><h1>%s</h1>\n<ul>\n", title, title)
	if dir != "" {
		b.WriteString("<li><a href=\"../\">../</a></li>\n")
	}
	for _, e := range entries {
		n := e.Name()
		if !sf.dotfiles && strings.HasPrefix(n, ".") && !(dir == "" && n == ".well-known") {
			continue
		}
		if e.IsDir() {
			n += "/"
		}
		// "./" first: a name such as "javascript:alert(1)" is a path,
		// never a scheme (as net/http's FileServer does).
		fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a></li>\n", html.EscapeString("./"+(&url.URL{Path: n}).EscapedPath()), html.EscapeString(n))
	}
	b.WriteString("</ul></body></html>\n")
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBodyString(b.String())
}
