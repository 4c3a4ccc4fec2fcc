// Package accesslog writes a line per request, in the combined format of
// Apache and nginx or as JSON, off the request path: Add formats into a
// buffer and returns, and Run writes the buffer out in the background, so
// that a slow disk never holds a request up. File is a log file that
// Reopen opens again under its name, for logrotate.
//
//	f, err := accesslog.OpenFile("/var/log/fastserve/access.log")
//	if err != nil { ... }
//	log := accesslog.New(f, accesslog.Combined)
//	go log.Run()
//	defer log.Close()
//	// per request, once its answer is set: log.Add(ctx, time.Now())
//
// The engine (package server) does this itself when given
// Config.AccessLog; the package stands alone for any fasthttp server.
//
// Limits: when the writer falls more than 1 MiB behind, lines are
// dropped and counted (Dropped), never queued without bound.
package accesslog
