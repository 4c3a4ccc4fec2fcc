// Package static serves the files under a directory, as a
// fasthttp.RequestHandler for the engine (package server) or any fasthttp
// server: byte ranges, ETag and Last-Modified with conditional requests
// (304, 412, If-Range), content types from the file name, and brotli,
// zstd and gzip variants of textual files, made once per version of a
// file and kept in memory.
//
//	files, err := static.New(static.Config{Root: "/srv/www"})
//	if err != nil { ... } // names the path
//	defer files.Close()
//	srv, err := server.New(server.Config{}, files.Handle)
//
// No response is torn: its bytes, length and validators belong to one
// version of the file, even while the file is edited in place, and a
// change shows within 0.1 s in every encoding (see Files). Paths never
// leave Root: dot segments, plain or percent-encoded, are resolved before
// a file is opened, and files are opened through an os.Root, so symbolic
// links that lead outside it are not followed. Nothing but the file
// requested is read from Root, and nothing is written there. Welcome is
// the built-in page a server with no files shows.
//
// Limits: one byte range per request (a request for several gets the
// whole file, as RFC 9110 allows); files over Config.MaxMemoryFileBytes
// are sent uncompressed; outside Linux a version is told by size and
// modification time alone.
package static
