package certs

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestCertmagicErrorsThrottled: certmagic's error lines (one per
// TLS-ALPN-01 handshake it cannot answer, which any client can send) are
// logged at most ratelog.Burst a second; its other lines all are.
func TestCertmagicErrorsThrottled(t *testing.T) {
	var buf bytes.Buffer
	zl := newZapLogger(slog.New(slog.NewTextHandler(&buf, nil))).Named("tls")
	for range 100 {
		zl.Error("no information found to solve challenge for identifier")
	}
	for range 20 {
		zl.Info("certificate obtained")
	}
	out := buf.String()
	if n := strings.Count(out, "no information found"); n > 20 || n < 10 {
		t.Errorf("%d error lines of 100 logged", n)
	}
	if n := strings.Count(out, "certificate obtained"); n != 20 {
		t.Errorf("%d info lines of 20 logged", n)
	}
}
