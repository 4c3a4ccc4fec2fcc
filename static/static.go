package static

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Config configures a static file handler.
type Config struct {
	// Root is the directory served. Paths never leave it: dot segments
	// (plain or percent-encoded) are resolved before the file is opened,
	// and symbolic links that lead outside it are not followed.
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

	// DisableCompression turns off serving compressed variants. By
	// default a client that accepts them gets brotli, zstd or gzip
	// (in that order of preference), compressed once and kept in
	// CompressCache.
	DisableCompression bool

	// CompressCache is the directory that keeps compressed copies, so
	// that Root itself is never written to; New fails if it cannot be
	// made. If empty, a directory under $CACHE_DIRECTORY (systemd's
	// CacheDirectory=), else under the user's cache directory
	// ($XDG_CACHE_HOME/fastserve/compressed/...); if that cannot be made
	// (a system user with no home), files are served uncompressed and
	// Warning says so.
	CompressCache string

	// CacheDuration is how long an open file handle (or a small file's
	// content) is reused before its changes are seen. If zero, 10 s.
	CacheDuration time.Duration
}

// Files serves the files under a root directory. Close stops its cache
// cleaner.
type Files struct {
	dotfiles bool
	warning  string
	handle   fasthttp.RequestHandler
	stop     chan struct{}
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
	if !sf.dotfiles && hidden(ctx.Path()) {
		ctx.Error("Not Found\n", fasthttp.StatusNotFound)
		return
	}
	sf.handle(ctx)
}

// hidden reports whether a path (normalized: no dot segments) names a
// file or directory whose name begins with a dot, outside /.well-known/.
func hidden(path []byte) bool {
	if bytes.HasPrefix(path, []byte("/.well-known/")) {
		path = path[len("/.well-known"):]
	}
	return bytes.Contains(path, []byte("/."))
}

// notAllowed answers a method other than GET and HEAD.
func notAllowed(ctx *fasthttp.RequestCtx) {
	ctx.Error("Method Not Allowed\n", fasthttp.StatusMethodNotAllowed) // resets the headers: Allow after it
	ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
}

// Warning says what New could not set up but served without (the
// default compression cache), or is empty.
func (sf *Files) Warning() string { return sf.warning }

// Close stops the background cleaner of the file cache.
func (sf *Files) Close() { close(sf.stop) }

// New serves the files under cfg.Root with fasthttp's FS: byte
// ranges, ETag and Last-Modified with 304 answers, content types from the
// file name, and compressed variants. It fails, naming the path, if Root
// is not a readable directory or the compression cache cannot be made.
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
	if cfg.IndexNames == nil {
		cfg.IndexNames = []string{"index.html"}
	}
	if cfg.CacheDuration == 0 {
		cfg.CacheDuration = 10 * time.Second
	}
	stop := make(chan struct{})
	fs := &fasthttp.FS{
		CleanStop:          stop,
		Root:               root,
		IndexNames:         cfg.IndexNames,
		GenerateIndexPages: cfg.ListDirectories,
		AcceptByteRange:    true,
		GenerateETag:       true,
		CacheDuration:      cfg.CacheDuration,
		Compress:           !cfg.DisableCompression,
		CompressBrotli:     true,
		CompressZstd:       true,
		PathNotFound: func(ctx *fasthttp.RequestCtx) {
			ctx.Error("Not Found\n", fasthttp.StatusNotFound)
		},
	}
	var warning string
	if fs.Compress {
		cache := cfg.CompressCache
		if cache == "" {
			cache, err = defaultCompressCache(root)
		}
		if err == nil {
			err = os.MkdirAll(cache, 0o700)
		}
		switch {
		case err == nil:
			fs.CompressRoot = cache
		case cfg.CompressCache != "":
			return nil, fmt.Errorf("static: compression cache: %w", err)
		default:
			// A system user with no home: serve, uncompressed.
			fs.Compress = false
			warning = "static: no compression cache, files are served uncompressed (set CACHE_DIRECTORY, as systemd's CacheDirectory= does, or XDG_CACHE_HOME): " + err.Error()
		}
	}
	return &Files{handle: fs.NewRequestHandler(), stop: stop, dotfiles: cfg.Dotfiles, warning: warning}, nil
}

// defaultCompressCache is a directory per served root under the user's
// cache directory.
func defaultCompressCache(root string) (string, error) {
	base, err := os.UserCacheDir()
	if dirs := os.Getenv("CACHE_DIRECTORY"); dirs != "" {
		base, _, _ = strings.Cut(dirs, ":") // systemd's CacheDirectory=
		return filepath.Join(base, "compressed", rootKey(root)), nil
	}
	if err != nil {
		return "", errors.New("no user cache directory for compressed files: " + err.Error())
	}
	return filepath.Join(base, "fastserve", "compressed", rootKey(root)), nil
}

// rootKey names a root's cache directory.
func rootKey(root string) string {
	sum := sha256.Sum256([]byte(root))
	return hex.EncodeToString(sum[:8])
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
