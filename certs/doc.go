// Package certs is where a TLS server's certificates come from: PEM files
// that Reload swaps at once, certificates obtained and renewed from an
// ACME CA (Let's Encrypt by default) with certmagic, and the session
// ticket keys, shared through files between instances or rotated in
// process.
//
// A server asks a Source for each handshake's certificate. Files and ACME
// are Sources; Pick serves ACME names from one and every other name from
// the other, as a server with both does; SourceFunc makes any function
// one.
//
//	files, err := certs.LoadFiles([]certs.KeyPair{{CertFile: "example.com.crt", KeyFile: "example.com.key"}}, false)
//	if err != nil { ... } // names the file
//	cfg := &tls.Config{GetCertificate: files.Certificate}
//	tickets, err := certs.NewTicketKeys(cfg, []string{"/etc/fastserve/ticket.key"})
//	// on SIGHUP: files.Reload(), and tickets.Set(tickets.Read())
//
// The engine (package server) does all of this from its Config.TLS and
// Config.ACME; the package stands alone for any crypto/tls server.
//
// Limits: ACME answers TLS-ALPN-01 and HTTP-01 only (no DNS-01), so no
// wildcard names.
package certs
