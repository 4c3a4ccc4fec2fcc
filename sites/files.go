package sites

import (
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/static"
)

// Files are a site's static options; each zero value keeps what
// Config.Static says.
type Files struct {
	// Index are the file names served for a directory ("index.html").
	Index []string

	// Dotfiles serves names that begin with a dot (static.Config.Dotfiles);
	// Listing lists a directory without an index file. Nil keeps
	// Config.Static's; set, either turns it on or off for the site.
	Dotfiles, Listing *bool

	// Fallback is the path served, with its own status, for a GET or HEAD
	// of a file that is not there: "/index.html" for a single-page
	// application, as nginx's try_files $uri /index.html. Only 404s fall
	// back; a 403 or 503 does not.
	Fallback string

	// CacheControl is the Cache-Control header of the files' answers
	// (200, 206 and 304), as "public, max-age=300".
	CacheControl string
}

// handler serves root with f's options over base, with t's static.Files
// for that root and options: shared by the sites that have the same, and
// kept from the previous tree (its memory of files with it).
func (f Files) handler(t *tree, base static.Config, root string) (fasthttp.RequestHandler, error) {
	sc := base
	sc.Root = root
	if f.Index != nil {
		sc.IndexNames = f.Index
	}
	if f.Dotfiles != nil {
		sc.Dotfiles = *f.Dotfiles
	}
	if f.Listing != nil {
		sc.ListDirectories = *f.Listing
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	files, err := t.files(sc)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	h := files.Handle
	if f.Fallback != "" {
		fallback := []byte(f.Fallback)
		serve := h
		h = func(ctx *fasthttp.RequestCtx) {
			serve(ctx)
			if ctx.Response.StatusCode() == fasthttp.StatusNotFound && (ctx.IsGet() || ctx.IsHead()) {
				ctx.Response.Reset()
				ctx.URI().SetPathBytes(fallback)
				serve(ctx)
			}
		}
	}
	if f.CacheControl != "" {
		cc, serve := f.CacheControl, h
		h = func(ctx *fasthttp.RequestCtx) {
			serve(ctx)
			switch ctx.Response.StatusCode() {
			case fasthttp.StatusOK, fasthttp.StatusPartialContent, fasthttp.StatusNotModified:
				ctx.Response.Header.Set(fasthttp.HeaderCacheControl, cc)
			}
		}
	}
	return h, nil
}

// check reports what is wrong with f, as build and Validate find it.
func (f Files) check() error {
	if f.Fallback != "" && (!strings.HasPrefix(f.Fallback, "/") || strings.HasSuffix(f.Fallback, "/")) {
		return fmt.Errorf("files.fallback: %q must be a file's path, such as /index.html", f.Fallback)
	}
	for _, name := range f.Index {
		if name == "" || strings.ContainsAny(name, "/\\") {
			return fmt.Errorf("files.index: %q must be a file name, without a directory", name)
		}
	}
	if strings.ContainsAny(f.CacheControl, "\r\n\x00") {
		return fmt.Errorf("files.cache-control: a value may not hold line breaks or NUL")
	}
	return nil
}
