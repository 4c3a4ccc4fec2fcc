package sites

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/field"
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

// check reports what is wrong with f on the site name whose root is
// root ("" for none), as Validate finds it: each a *ConfigError naming
// its field (name+".Files.Fallback"). The fallback must be a file under
// root now: a request it serves would be 404 otherwise (nginx's try_files
// falling back to a missing file).
func (f Files) check(name, root string) []error {
	es := field.Errors{Pkg: "sites"}
	for i, n := range f.Index {
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") {
			es.Bad(fmt.Sprintf("%s.Files.Index[%d]", name, i), fmt.Sprintf("%q", n), "a file name, without a directory")
		}
	}
	switch {
	case f.Fallback == "":
	case !strings.HasPrefix(f.Fallback, "/") || strings.HasSuffix(f.Fallback, "/") || strings.ContainsAny(f.Fallback, "\\\x00"):
		es.Bad(name+".Files.Fallback", fmt.Sprintf("%q", f.Fallback), "a file's path, such as /index.html")
	case root != "":
		if err := regularFile(root, f.Fallback); err != nil {
			es.Add(&ConfigError{Pkg: "sites", Field: name + ".Files.Fallback", Value: fmt.Sprintf("%q", f.Fallback), Allowed: "a file under the site's root", Err: err})
		}
	}
	if strings.ContainsAny(f.CacheControl, "\r\n\x00") {
		es.Bad(name+".Files.CacheControl", fmt.Sprintf("%q", f.CacheControl), "a header value, without line breaks or NUL")
	}
	return es.List
}

// regularFile reports why p, a request path (its dot segments resolved
// as the request's are), names no regular file under root, as the
// static files would open it: through an os.Root, so that a symbolic
// link out of root is no file of it.
func regularFile(root, p string) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	rel := strings.TrimPrefix(path.Clean(p), "/")
	if rel == "" {
		rel = "."
	}
	fi, err := r.Stat(rel)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a file", p)
	}
	return nil
}
