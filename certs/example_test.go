package certs_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/internal/selfsigned"
)

// Certificates from files, picked by the client's server name, behind a
// SourceFunc that refuses one name outright.
func ExampleLoadFiles() {
	dir, err := os.MkdirTemp("", "certs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var pairs []certs.KeyPair
	for _, name := range []string{"example.com", "example.org"} {
		certPEM, keyPEM, err := selfsigned.PEM(time.Hour, name)
		if err != nil {
			log.Fatal(err)
		}
		p := certs.KeyPair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
		_ = os.WriteFile(p.CertFile, certPEM, 0o600)
		_ = os.WriteFile(p.KeyFile, keyPEM, 0o600)
		pairs = append(pairs, p)
	}
	files, err := certs.LoadFiles(pairs, false)
	if err != nil {
		log.Fatal(err) // names the file
	}
	src := certs.SourceFunc(func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == "blocked.example" {
			return nil, nil // the unrecognized_name alert
		}
		return files.Certificate(hello)
	})
	for _, name := range []string{"example.org", "other.example", "blocked.example"} {
		hello := &tls.ClientHelloInfo{ServerName: name, SupportedVersions: []uint16{tls.VersionTLS13},
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}} // as a client sends it
		c, _ := src.Certificate(hello)
		if c == nil {
			fmt.Println(name, "-> refused")
			continue
		}
		fmt.Println(name, "->", c.Leaf.DNSNames[0])
	}
	// Output:
	// example.org -> example.org
	// other.example -> example.com
	// blocked.example -> refused
}
