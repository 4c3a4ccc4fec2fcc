package certs

import "crypto/tls"

// A Source gives the certificate for a TLS handshake: the server's
// tls.Config.GetCertificate calls it once per handshake. No certificate
// and no error (nil, nil) means none for the client's server name: the
// handshake ends with the unrecognized_name alert.
type Source interface {
	Certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// SourceFunc adapts a function to a Source.
type SourceFunc func(hello *tls.ClientHelloInfo) (*tls.Certificate, error)

// Certificate calls f.
func (f SourceFunc) Certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f(hello)
}

var _ Source = SourceFunc(nil)

// Pick serves the ACME names from acme and every other name from files,
// as a server with both does. A TLS-ALPN-01 validation is acme's to
// answer. With no files (files empty) and not strict, names that are not
// ACME names get acme's first name's certificate. An ACME name with no
// certificate yet gets a file that covers it, if one does; else the
// handshake fails at once (no waiting on the order, no untrusted
// stand-in).
func Pick(acme *ACME, files *Files, strict bool) Source {
	if acme == nil {
		return files
	}
	return SourceFunc(func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if IsChallenge(hello) {
			return acme.magic.GetCertificate(hello)
		}
		if acme.Manages(hello.ServerName) || (files.Len() == 0 && !strict) {
			c, err := acme.Certificate(hello)
			if err == nil {
				return c, nil
			}
			if fc := files.Covering(hello); fc != nil {
				return fc, nil
			}
			return nil, err
		}
		return files.Certificate(hello)
	})
}
