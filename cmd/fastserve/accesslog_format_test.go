package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/accesslog"
)

// TestAccessLogFormatString: --access-log-format with $variables writes
// each request's line as the format says; check names an unknown
// variable, and exits 2 as serve would.
func TestAccessLogFormatString(t *testing.T) {
	t.Parallel()
	t.Run("serve", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "access.log")
		format := `$remote_addr $ssl_protocol $ssl_session_reused $host "$request" $status $body_bytes_sent $request_length "$http_user_agent" $site $upstream_addr`
		in := serve(t, childEnv(t), "--access-log", file, "--access-log-format", format)
		c := dial(t, in.https, insecure)
		body := c.mustGet(t, "/one")
		req := "GET /one HTTP/1.1\r\nHost: localhost\r\nUser-Agent: fastserve-test\r\n\r\n" // as mustGet sends it
		want := fmt.Sprintf(`127.0.0.1 TLSv1.3 . localhost "GET /one HTTP/1.1" 200 %d %d "fastserve-test" - -`, len(body), len(req))
		assert.Equal(t, []string{want}, logLines(t, file, 1))
	})
	t.Run("check", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "access.log")
		r := run(t, childEnv(t), "check", "--access-log", file, "--access-log-format", "$status $bytes")
		assert.Equal(t, 2, r.code)
		assert.Equal(t, `fastserve: --access-log-format=$status $bytes (flag --access-log-format): accesslog: format "$status $bytes": `+
			"unknown variable $bytes (known: "+strings.Join(accesslog.Variables(), " ")+")\n", r.stderr)

		r = run(t, childEnv(t), "check", "--access-log", file, "--access-log-format", "common")
		assert.Equal(t, 2, r.code)
		assert.Equal(t, `fastserve: --access-log-format=common (flag --access-log-format): invalid value: must be combined, json, `+
			`or a format string of $variables, such as '$remote_addr "$request" $status' (see the README)`+"\n", r.stderr)

		r = run(t, childEnv(t), "check", "--access-log", file, "--access-log-format", "$status ${site}")
		assert.Equal(t, 0, r.code, r.stderr)
	})
}
