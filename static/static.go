package static

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/singleflight"
)

// Config configures a static file handler.
type Config struct {
	// Root is the directory served. Paths never leave it: dot segments
	// (plain or percent-encoded) are resolved before the file is opened,
	// and symbolic links that lead outside it are not followed (the files
	// are opened through an os.Root).
	Root string

	// IndexNames are the files served for a directory. If nil,
	// ["index.html"].
	IndexNames []string

	// Dotfiles serves files and directories whose name begins with a dot.
	// By default a path with such a segment (/.env, /.git/config) is 404,
	// as if the file were not there, but for /.well-known/ (RFC 8615),
	// which is served.
	Dotfiles bool

	// ListDirectories generates a listing for a directory without an
	// index file. Off by default: such a directory answers 403.
	ListDirectories bool

	// DisableCompression turns off compressed answers. By default a
	// client that accepts them gets a textual file (HTML, CSS,
	// JavaScript, JSON, XML, SVG, ...) of up to MaxMemoryFileBytes in
	// brotli, zstd or gzip, in that order of preference, compressed once
	// per version of the file and kept in memory.
	DisableCompression bool

	// MaxMemoryFileBytes is the size up to which a file is read whole
	// into memory, checked to be one version of the file (see Files), and
	// kept for the requests that follow while the file does not change.
	// A larger file is sent from disk as it is read. If zero, 4 MiB.
	MaxMemoryFileBytes int

	// CacheBytes bounds the memory kept for files and their compressed
	// variants; past it, files not used lately are dropped (CLOCK). If
	// zero, 64 MiB.
	CacheBytes int64

	// MaxOpenFiles bounds the files over MaxMemoryFileBytes being sent at
	// once, each holding a descriptor for as long as its client takes to
	// read it; past it, such a request gets 503 with Retry-After. If zero,
	// 1/16 of the process's descriptor limit (RLIMIT_NOFILE), at least 16:
	// half of what the server's default MaxConns leaves.
	MaxOpenFiles int
}

// Defaults.
const (
	DefaultMaxMemoryFileBytes = 4 << 20
	DefaultCacheBytes         = 64 << 20
)

// Files serves the files under a root directory. Make one with New; Close
// it when done.
//
// No response is torn: its bytes, Content-Length, ETag and Last-Modified
// belong to one version of the file, even while the file is edited in
// place (cp, rsync --inplace, a shell redirection). A file of up to
// MaxMemoryFileBytes is read whole between two looks at its inode
// (size, modification and change times) that must agree, or it is read
// again; one changed within the last second is read twice and the bytes
// compared, since a write sets the times before it copies its bytes. So a
// response is the file as it stood at one moment: a write in progress, or
// a writer paused in the middle of one, is such a moment, as for any
// reader of the file; deploy by renaming a complete file over the old one
// to never serve a half-written one. A larger file is sent as it is read,
// and if it is no longer the version its headers announced when its last
// bytes are due, the connection is cut short of them. A version kept in
// memory is looked at again (one stat) when it was last seen more than
// 0.1 s before (on every request in its first second), so a change shows
// within 0.1 s, in every encoding.
//
// Nothing but the file requested (or a directory's index names) is read
// from the root, and nothing is ever written there. A file is open only
// while it is read, or while a large one is sent (at most MaxOpenFiles at
// once), so a connection holds at most one descriptor beside its socket;
// running out of descriptors is 503 with Retry-After, never 404.
type Files struct {
	root       *os.Root
	dir        *os.File // the root again, for the stat of cached files
	dirfd      int
	dotfiles   bool
	listing    bool
	compress   bool
	index      []string
	maxMem     int
	cacheBytes int64

	mu      sync.RWMutex
	entries map[string]*entry
	ring    []*entry // the entries, in the order the CLOCK hand visits them
	hand    int
	size    atomic.Int64 // bytes counted for the entries (entry.cost)

	flight  singleflight.Group // one load per name at a time
	streams chan struct{}      // a slot per large file being sent (MaxOpenFiles)
	closed  atomic.Bool
}

// New serves the files under cfg.Root. It fails, naming the path, if Root
// is not a readable directory.
func New(cfg Config) (*Files, error) {
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("static: root %q: %w", cfg.Root, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("static: root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("static: root %s is not a directory", root)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("static: root: %w", err)
	}
	dir, err := os.Open(root)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("static: root: %w", err)
	}
	if cfg.IndexNames == nil {
		cfg.IndexNames = []string{"index.html"}
	}
	for _, name := range cfg.IndexNames {
		if name == "" || name != filepath.Base(name) {
			r.Close()
			dir.Close()
			return nil, fmt.Errorf("static: index name %q must be a file name, without a directory", name)
		}
	}
	sf := &Files{
		root:       r,
		dir:        dir,
		dirfd:      int(dir.Fd()),
		dotfiles:   cfg.Dotfiles,
		listing:    cfg.ListDirectories,
		compress:   !cfg.DisableCompression,
		index:      cfg.IndexNames,
		maxMem:     cfg.MaxMemoryFileBytes,
		cacheBytes: cfg.CacheBytes,
		entries:    make(map[string]*entry),
	}
	if sf.maxMem <= 0 {
		sf.maxMem = DefaultMaxMemoryFileBytes
	}
	if sf.cacheBytes <= 0 {
		sf.cacheBytes = DefaultCacheBytes
	}
	open := cfg.MaxOpenFiles
	if open <= 0 {
		open = max(fileLimit()/16, 16)
	}
	sf.streams = make(chan struct{}, open)
	return sf, nil
}

// Close releases the root directory. Requests after it get 503.
func (sf *Files) Close() {
	if sf.closed.Swap(true) {
		return
	}
	sf.root.Close()
	sf.dir.Close()
}

// Handle serves the request's path from the root.
//
// Only GET and HEAD are served; any other method gets 405 Method Not
// Allowed with Allow: GET, HEAD, as nginx answers a POST to a file.
func (sf *Files) Handle(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		notAllowed(ctx)
		return
	}
	path := ctx.Path() // normalized by fasthttp: decoded, no dot segments
	if !sf.dotfiles && hidden(path) {
		notFound(ctx)
		return
	}
	name := path[1:]
	if len(name) == 0 || name[len(name)-1] == '/' {
		sf.serveDir(ctx, name)
		return
	}
	v, err := sf.open(name)
	if errors.Is(err, errIsDir) {
		// As nginx: the directory's URL ends with a slash.
		loc := (&url.URL{Path: string(path) + "/", RawQuery: string(ctx.URI().QueryString())}).String()
		ctx.Response.Header.Set(fasthttp.HeaderLocation, loc)
		ctx.SetStatusCode(fasthttp.StatusMovedPermanently)
		return
	}
	if err != nil {
		sf.openFailed(ctx, err)
		return
	}
	sf.respond(ctx, v)
}

// serveDir serves a directory's index file, or its listing.
func (sf *Files) serveDir(ctx *fasthttp.RequestCtx, dir []byte) {
	var buf [256]byte
	for _, idx := range sf.index {
		v, err := sf.open(append(append(buf[:0], dir...), idx...))
		if err == nil {
			sf.respond(ctx, v)
			return
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, errIsDir) {
			sf.openFailed(ctx, err)
			return
		}
	}
	name := strings.TrimSuffix(string(dir), "/")
	if name == "" {
		name = "."
	}
	if v, err := sf.stat(name); err != nil || !v.isDirectory {
		if err == nil {
			err = os.ErrNotExist
		}
		sf.openFailed(ctx, err) // no such directory: 404, as nginx
		return
	}
	if !sf.listing {
		ctx.Error("Forbidden\n", fasthttp.StatusForbidden)
		return
	}
	sf.list(ctx, string(dir))
}

// openFailed answers a file that could not be served: 404 if it is not
// there (or not a regular file), 503 if the process is out of
// descriptors or memory for it, 403 if it may not be read.
func (sf *Files) openFailed(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE), errors.Is(err, syscall.ENOMEM),
		errors.Is(err, errChanging), errors.Is(err, errBusy), errors.Is(err, errClosed):
		ctx.Error("Service Unavailable\n", fasthttp.StatusServiceUnavailable)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	case errors.Is(err, os.ErrPermission):
		ctx.Error("Forbidden\n", fasthttp.StatusForbidden)
	default:
		notFound(ctx)
	}
}

// hidden reports whether a path (normalized: no dot segments) names a
// file or directory whose name begins with a dot, outside /.well-known/.
func hidden(path []byte) bool {
	if bytes.HasPrefix(path, []byte("/.well-known/")) || string(path) == "/.well-known" {
		path = path[len("/.well-known"):]
	}
	return bytes.Contains(path, []byte("/."))
}

func notFound(ctx *fasthttp.RequestCtx) {
	ctx.Error("Not Found\n", fasthttp.StatusNotFound)
}

// notAllowed answers a method other than GET and HEAD.
func notAllowed(ctx *fasthttp.RequestCtx) {
	ctx.Error("Method Not Allowed\n", fasthttp.StatusMethodNotAllowed) // resets the headers: Allow after it
	ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
}

// Welcome answers every request with a small HTML page saying that
// fastserve is running: the default content of a server with no files.
func Welcome(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		notAllowed(ctx)
		return
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBodyString(welcomePage)
}

const welcomePage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>fastserve</title></head>
<body>
<h1>fastserve is running</h1>
<p>This is the built-in page. Serve your own files with <code>fastserve serve --root DIR</code>,
and use a real certificate with <code>--cert</code> and <code>--key</code>.</p>
</body>
</html>
`
