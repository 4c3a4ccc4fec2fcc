// Package static serves the files under a directory, as a
// fasthttp.RequestHandler for the engine (package server) or any fasthttp
// server, with fasthttp's FS underneath: byte ranges, ETag and
// Last-Modified with 304 answers, content types from the file name, and
// brotli, zstd and gzip variants compressed once and kept outside the
// served directory.
//
//	files, err := static.New(static.Config{Root: "/srv/www"})
//	if err != nil { ... } // names the path
//	defer files.Close()
//	srv, err := server.New(server.Config{}, files.Handle)
//
// Paths never leave Root: dot segments, plain or percent-encoded, are
// resolved before a file is opened, and symbolic links that lead outside
// it are not followed. Welcome is the built-in page a server with no
// files shows.
//
// Limits: open files and small files' contents are cached for
// Config.CacheDuration, so a file changed in place is seen only after it.
package static
