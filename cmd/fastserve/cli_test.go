package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastserve/fastserve/certs"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	r := run(t, childEnv(t), "version")
	assert.Equal(t, 0, r.code)
	assert.Empty(t, r.stderr)
	assert.Regexp(t, `^fastserve \S+.* \(fasthttp v\d+\.\d+\.\d+, go1\.\d+\S* linux/\w+\)\n$`, r.stdout)
}

func TestCert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	args := []string{"cert", "--cert-file", certFile, "--key-file", keyFile, "--host", "localhost,127.0.0.1"}

	r := run(t, childEnv(t), args...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, fmt.Sprintf("wrote %s and %s for localhost, 127.0.0.1, valid for 8760h0m0s\n", certFile, keyFile), r.stderr)
	assert.Empty(t, r.stdout)

	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "key file mode")
	first, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err, "tls.LoadX509KeyPair accepts what cert wrote")
	leaf := first.Leaf
	require.NotNil(t, leaf)
	assert.Equal(t, x509.ECDSA, leaf.PublicKeyAlgorithm)
	assert.Equal(t, elliptic.P256(), leaf.PublicKey.(*ecdsa.PublicKey).Curve)
	assert.Equal(t, []string{"localhost"}, leaf.DNSNames)
	require.Len(t, leaf.IPAddresses, 1)
	assert.True(t, leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")), "IP SAN %v", leaf.IPAddresses)
	assert.NoError(t, leaf.VerifyHostname("localhost"))
	assert.NoError(t, leaf.VerifyHostname("127.0.0.1"))
	assert.Error(t, leaf.VerifyHostname("::1"), "::1 was not asked for")

	certBefore, err := os.ReadFile(certFile)
	require.NoError(t, err)
	keyBefore, err := os.ReadFile(keyFile)
	require.NoError(t, err)

	t.Run("refuses to overwrite", func(t *testing.T) {
		r := run(t, childEnv(t), args...)
		assert.Equal(t, 1, r.code)
		assert.Equal(t, fmt.Sprintf("fastserve: open %s: file exists (use --force to overwrite)\n", keyFile), r.stderr)
		certAfter, err := os.ReadFile(certFile)
		require.NoError(t, err)
		keyAfter, err := os.ReadFile(keyFile)
		require.NoError(t, err)
		assert.Equal(t, certBefore, certAfter, "certificate untouched")
		assert.Equal(t, keyBefore, keyAfter, "key untouched")
	})

	t.Run("--force overwrites", func(t *testing.T) {
		r := run(t, childEnv(t), append(args, "--force")...)
		require.Equal(t, 0, r.code, r.stderr)
		second, err := tls.LoadX509KeyPair(certFile, keyFile)
		require.NoError(t, err)
		assert.NotEqual(t, first.Leaf.Raw, second.Leaf.Raw, "a new certificate")
		fi, err := os.Stat(keyFile)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "key file mode after --force")
	})
}

// settingNames are the settings, in the order check prints them.
func settingNames() []string {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	(&settings{}).register(fs)
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" {
			names = append(names, f.Name)
		}
	})
	return names
}

func TestCheckValidConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "fastserve.yaml", `# a comment
addr: "127.0.0.1:8443"
keepalive-idle: 30s
cert: [`+filepath.Join(dir, "a.crt")+`]
key: [`+filepath.Join(dir, "a.key")+`]
access-log-format: json
proxy-protocol: true
proxy-protocol-from: [10.0.0.0/8, 192.168.1.7]
access-log: "-"
`)
	r := run(t, childEnv(t), "cert", "--cert-file", filepath.Join(dir, "a.crt"), "--key-file", filepath.Join(dir, "a.key"))
	require.Equal(t, 0, r.code, r.stderr)

	r = run(t, childEnv(t, "FASTSERVE_MAX_CONNS=1000", "FASTSERVE_PROXY_PROTOCOL_TIMEOUT=2s"), "check", "--config", cfg, "--log-format", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr)

	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.NotEmpty(t, lines)
	assert.Equal(t, "# settings are valid", lines[len(lines)-1])
	got := map[string]string{}
	for _, l := range lines[:len(lines)-1] {
		name, _, ok := strings.Cut(l, ": ")
		require.True(t, ok, "line %q is not 'name: value  # source'", l)
		got[name] = l
	}
	for _, name := range settingNames() {
		assert.Contains(t, got, name, "check prints setting %s", name)
	}
	want := map[string]string{
		"addr":              "addr: 127.0.0.1:8443  # config file " + cfg + ":2",
		"keepalive-idle":    "keepalive-idle: 30s  # config file " + cfg + ":3",
		"cert":              "cert: [" + filepath.Join(dir, "a.crt") + "]  # config file " + cfg + ":4",
		"key":               "key: [" + filepath.Join(dir, "a.key") + "]  # config file " + cfg + ":5",
		"access-log-format": "access-log-format: json  # config file " + cfg + ":6",
		"max-conns":         "max-conns: 1000  # environment FASTSERVE_MAX_CONNS",
		"log-format":        "log-format: json  # flag --log-format",
		"keepalive-count":   "keepalive-count: 5  # default",
		"idle-timeout":      "idle-timeout: 10m20s  # default",
		"tcp-user-timeout":  "tcp-user-timeout: 1m20s  # default, derived from 0s",
		"admin":             "admin: 127.0.0.1:9090  # default",

		"proxy-protocol":         "proxy-protocol: true  # config file " + cfg + ":7",
		"proxy-protocol-from":    "proxy-protocol-from: 10.0.0.0/8,192.168.1.7/32  # config file " + cfg + ":8",
		"proxy-protocol-timeout": "proxy-protocol-timeout: 2s  # environment FASTSERVE_PROXY_PROTOCOL_TIMEOUT",
		"access-log":             "access-log: -  # config file " + cfg + ":9",
	}
	for name, line := range want {
		assert.Equal(t, line, got[name])
	}
	assert.NotContains(t, got, "config", "--config is not a setting")
}

func TestCheckInvalidConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "bad.yaml", `keepalive-idle: 500ms
log-level: loud
idle-timeout: -1s
hsts: 90m
max-header-bytes: 100
`)
	r := run(t, childEnv(t), "check", "--config", cfg)
	assert.Equal(t, 2, r.code)
	assert.Empty(t, r.stdout, "no settings printed when they are invalid")
	assert.ElementsMatch(t, []string{
		"fastserve: --keepalive-idle=500ms (config file " + cfg + ":1): invalid value: must be a whole number of seconds from 1s to 32767s, or 0 for 15s",
		"fastserve: --log-level=loud (config file " + cfg + ":2): invalid value: want debug, info, warn or error",
		"fastserve: --idle-timeout=-1s (config file " + cfg + ":3): invalid value: must be 1ms or more, or 0 for 10m20s",
		"fastserve: --max-header-bytes=100 (config file " + cfg + ":5): invalid value: must be from 1024 to 1073741824 bytes, or 0 for 16384",
	}, r.stderrLines())
}

// TestPrecedenceCheck: a flag wins over the environment, which wins over
// the config file, as check reports.
func TestPrecedenceCheck(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, t.TempDir(), "fastserve.yaml", "keepalive-interval: 5s\nkeepalive-idle: 30s\n")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"flag", []string{"FASTSERVE_KEEPALIVE_IDLE=40s"}, []string{"--keepalive-idle", "50s"}, "keepalive-idle: 50s  # flag --keepalive-idle"},
		{"environment", []string{"FASTSERVE_KEEPALIVE_IDLE=40s"}, nil, "keepalive-idle: 40s  # environment FASTSERVE_KEEPALIVE_IDLE"},
		{"file", nil, nil, "keepalive-idle: 30s  # config file " + cfg + ":2"},
		{"config file from the environment", []string{"FASTSERVE_CONFIG=" + cfg}, nil, "keepalive-idle: 30s  # config file " + cfg + ":2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"check"}, tc.args...)
			if tc.name != "config file from the environment" {
				args = append(args, "--config", cfg)
			}
			r := run(t, childEnv(t, tc.env...), args...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Contains(t, strings.Split(r.stdout, "\n"), tc.want)
			assert.Contains(t, strings.Split(r.stdout, "\n"), "keepalive-interval: 5s  # config file "+cfg+":1")
		})
	}
}

// TestBadInput: each wrong setting stops every command that takes the
// settings with exit code 2 and exactly one line naming it, its value and
// what is allowed, before anything is bound or logged.
func TestBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badValueFile := writeFile(t, dir, "bad-value.yaml", "keepalive-idle: 30s\nmax-conns: many\n")
	unknownKeyFile := writeFile(t, dir, "unknown-key.yaml", "keepalive-idle: 30s\nkeepalive_count: 3\n")
	notDir := writeFile(t, dir, "file.txt", "not a directory\n")
	missingCert, missingKey := filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key")
	missingDir := filepath.Join(dir, "missing")
	badCIDRFile := writeFile(t, dir, "bad-cidr.yaml", "proxy-protocol: true\nproxy-protocol-from: [10.0.0.0/8, 10.1.2.3/8/8]\n")
	badRouteFile := writeFile(t, dir, "bad-route.yaml", "keepalive-idle: 30s\nroutes:\n  - path: /api/\n    proxy: [http://127.0.0.1:9001, http://127.0.0.1:9002/v1]\n")

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string // the whole of stderr, one line
	}{
		{"bad duration flag", nil, []string{"--keepalive-idle", "abc"},
			"fastserve: --keepalive-idle=abc (flag --keepalive-idle): invalid value: want a duration such as 60s, 1m30s or 0"},
		{"out of range", nil, []string{"--keepalive-idle", "500ms"},
			"fastserve: --keepalive-idle=500ms (flag --keepalive-idle): invalid value: must be a whole number of seconds from 1s to 32767s, or 0 for 15s"},
		{"bad environment value", []string{"FASTSERVE_MAX_CONNS=lots"}, nil,
			"fastserve: --max-conns=lots (environment FASTSERVE_MAX_CONNS): invalid value: want a whole number"},
		{"bad file value", nil, []string{"--config", badValueFile},
			"fastserve: --max-conns=many (config file " + badValueFile + ":2): invalid value: want a whole number"},
		{"unknown file key", nil, []string{"--config", unknownKeyFile},
			"fastserve: config file " + unknownKeyFile + `:2: unknown setting "keepalive_count" (did you mean "keepalive-count"?); settings are named as the flags in 'fastserve serve --help', and the default site's rules as a site's (` + ruleKeys + `)`},
		{"unknown flag", nil, []string{"--keepalive-idel", "30s"},
			"fastserve: unknown flag: --keepalive-idel (see 'fastserve serve --help')"},
		{"TLS 1.1", nil, []string{"--tls-min-version", "1.1"},
			"fastserve: --tls-min-version=1.1 (flag --tls-min-version): invalid value: want 1.2 or 1.3"},
		{"cert without key", nil, []string{"--cert", missingCert},
			"fastserve: --cert and --key come in pairs, got 1 --cert and 0 --key"},
		{"missing cert file", nil, []string{"--cert", missingCert, "--key", missingKey},
			"fastserve: --cert=" + missingCert + " (flag --cert): certificate " + missingCert + " with key " + missingKey + ": open " + missingCert + ": no such file or directory"},
		{"root not a directory", nil, []string{"--root", notDir},
			"fastserve: --root=" + notDir + " (flag --root): invalid value: want an existing directory"},
		{"log format", nil, []string{"--log-format", "xml"},
			"fastserve: --log-format=xml (flag --log-format): invalid value: want text or json"},
		{"bad CIDR flag", nil, []string{"--proxy-protocol", "--proxy-protocol-from", "10.0.0.0/33"},
			"fastserve: --proxy-protocol-from=10.0.0.0/33 (flag --proxy-protocol-from): invalid value: want a CIDR such as 10.0.0.0/8, an address, or any"},
		{"bad CIDR in a list", []string{"FASTSERVE_PROXY_PROTOCOL=true", "FASTSERVE_PROXY_PROTOCOL_FROM=10.0.0.0/8,lb.internal"}, nil,
			"fastserve: --proxy-protocol-from=10.0.0.0/8,lb.internal (environment FASTSERVE_PROXY_PROTOCOL_FROM): invalid value: want a CIDR such as 10.0.0.0/8, an address, or any"},
		{"bad CIDR in the file", nil, []string{"--config", badCIDRFile},
			"fastserve: --proxy-protocol-from=10.1.2.3/8/8 (config file " + badCIDRFile + ":2): invalid value: want a CIDR such as 10.0.0.0/8, an address, or any"},
		{"PROXY networks without PROXY protocol", nil, []string{"--proxy-protocol-from", "10.0.0.0/8"},
			"fastserve: --proxy-protocol-from=10.0.0.0/8 (flag --proxy-protocol-from): takes effect only with --proxy-protocol, which is false (default)"},
		{"PROXY protocol without its balancers", nil, []string{"--proxy-protocol"},
			"fastserve: --proxy-protocol-from= (default): invalid value: must be the load balancers' networks, as CIDR[,CIDR...] (10.0.0.0/8,192.168.1.10), " +
				"or any to trust every peer (dangerous: a client that reaches the port directly chooses the address it is logged and limited by)"},
		{"PROXY protocol without its balancers, from the environment", []string{"FASTSERVE_PROXY_PROTOCOL=true"}, nil,
			"fastserve: --proxy-protocol-from= (default): invalid value: must be the load balancers' networks, as CIDR[,CIDR...] (10.0.0.0/8,192.168.1.10), " +
				"or any to trust every peer (dangerous: a client that reaches the port directly chooses the address it is logged and limited by)"},
		{"PROXY timeout", nil, []string{"--proxy-protocol", "--proxy-protocol-from", "10.0.0.0/8", "--proxy-protocol-timeout", "-1s"},
			"fastserve: --proxy-protocol-timeout=-1s (flag --proxy-protocol-timeout): invalid value: must be 1ms or more, or 0 for 3s"},
		{"proxy scheme", nil, []string{"--proxy", "ftp://127.0.0.1:9001"},
			`fastserve: --proxy=ftp://127.0.0.1:9001 (flag --proxy): invalid value: must be an http:// or https:// URL with a host and no path, such as "http://127.0.0.1:9001"`},
		{"proxy URL in the environment", []string{"FASTSERVE_PROXY=http://127.0.0.1:9001,http://127.0.0.1:9002/v1"}, nil,
			`fastserve: --proxy=http://127.0.0.1:9002/v1 (environment FASTSERVE_PROXY): invalid value: must be an http:// or https:// URL with a host and no path, such as "http://127.0.0.1:9001"`},
		{"proxy timeout", nil, []string{"--proxy", "http://127.0.0.1:9001", "--proxy-connect-timeout", "-1s"},
			"fastserve: --proxy-connect-timeout=-1s (flag --proxy-connect-timeout): invalid value: must be 1ms or more, or 0 for 5s"},
		{"proxy host header", nil, []string{"--proxy", "http://127.0.0.1:9001", "--proxy-host-header", "a b"},
			`fastserve: --proxy-host-header=a b (flag --proxy-host-header): invalid value: must be "pass", "upstream" or a host[:port] to send`},
		{"proxy body temp dir", nil, []string{"--proxy", "http://127.0.0.1:9001", "--proxy-body-temp-dir", missingDir},
			"fastserve: --proxy-body-temp-dir=" + missingDir + " (flag --proxy-body-temp-dir): invalid value: must be a directory the server can make files in (no such file or directory)"},
		{"proxy body temp dir a file", []string{"FASTSERVE_PROXY=http://127.0.0.1:9001", "FASTSERVE_PROXY_BODY_TEMP_DIR=" + notDir}, nil,
			"fastserve: --proxy-body-temp-dir=" + notDir + " (environment FASTSERVE_PROXY_BODY_TEMP_DIR): invalid value: must be a directory the server can make files in (not a directory)"},
		{"proxy body buffer", nil, []string{"--proxy", "http://127.0.0.1:9001", "--proxy-body-buffer-bytes", "-1"},
			"fastserve: --proxy-body-buffer-bytes=-1 (flag --proxy-body-buffer-bytes): invalid value: must be from 1 to 1073741824 bytes, or 0 for 65536"},
		{"proxy max header bytes", nil, []string{"--proxy", "http://127.0.0.1:9001", "--proxy-max-header-bytes", "100"},
			"fastserve: --proxy-max-header-bytes=100 (flag --proxy-max-header-bytes): invalid value: must be from 1024 to 1048576 bytes, or 0 for 4096"},
		{"route in the file", nil, []string{"--config", badRouteFile},
			"fastserve: config file " + badRouteFile + `:4: routes[0].proxy[1]: http://127.0.0.1:9002/v1: must be an http:// or https:// URL with a host and no path, such as "http://127.0.0.1:9001"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, command := range [][]string{nil, {"serve"}, {"check"}} {
				httpsPort, adminPort := freePort(t), freePort(t)
				args := append(append([]string{}, command...), tc.args...)
				args = append(args, "--addr", fmt.Sprintf("127.0.0.1:%d", httpsPort), "--admin", fmt.Sprintf("127.0.0.1:%d", adminPort))
				r := run(t, childEnv(t, tc.env...), args...)
				assert.Equal(t, 2, r.code, "exit code of fastserve %s", strings.Join(args, " "))
				assert.Equal(t, tc.want+"\n", r.stderr, "stderr of fastserve %s", strings.Join(args, " "))
				assert.Empty(t, r.stdout)
				for _, port := range []int{httpsPort, adminPort} {
					ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
					if assert.NoError(t, err, "port %d is free after the failed run", port) {
						ln.Close()
					}
				}
			}
		})
	}
}

// TestBadInputReportsEveryProblem: the README promises one line per
// problem. Values found wrong while reading the environment or the file
// must not hide the values found wrong afterwards.
func TestBadInputReportsEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	t.Run("flags only", func(t *testing.T) {
		t.Parallel()
		r := run(t, childEnv(t), "check", "--keepalive-idle", "500ms", "--log-format", "xml", "--tls-min-version", "1.1")
		assert.Equal(t, 2, r.code)
		assert.ElementsMatch(t, []string{
			"fastserve: --tls-min-version=1.1 (flag --tls-min-version): invalid value: want 1.2 or 1.3",
			"fastserve: --log-format=xml (flag --log-format): invalid value: want text or json",
			"fastserve: --keepalive-idle=500ms (flag --keepalive-idle): invalid value: must be a whole number of seconds from 1s to 32767s, or 0 for 15s",
		}, r.stderrLines())
	})
	t.Run("environment and flags", func(t *testing.T) {
		t.Parallel()
		r := run(t, childEnv(t, "FASTSERVE_MAX_CONNS=lots"), "check", "--keepalive-idle", "500ms", "--log-format", "xml")
		assert.Equal(t, 2, r.code)
		assert.ElementsMatch(t, []string{
			"fastserve: --max-conns=lots (environment FASTSERVE_MAX_CONNS): invalid value: want a whole number",
			"fastserve: --log-format=xml (flag --log-format): invalid value: want text or json",
			"fastserve: --keepalive-idle=500ms (flag --keepalive-idle): invalid value: must be a whole number of seconds from 1s to 32767s, or 0 for 15s",
		}, r.stderrLines())
	})
	t.Run("one file", func(t *testing.T) {
		t.Parallel()
		cfg := writeFile(t, dir, "two-problems.yaml", "keepalive_count: 3\nkeepalive-idle: 500ms\n")
		r := run(t, childEnv(t), "check", "--config", cfg)
		assert.Equal(t, 2, r.code)
		assert.ElementsMatch(t, []string{
			"fastserve: config file " + cfg + `:1: unknown setting "keepalive_count" (did you mean "keepalive-count"?); settings are named as the flags in 'fastserve serve --help', and the default site's rules as a site's (` + ruleKeys + `)`,
			"fastserve: --keepalive-idle=500ms (config file " + cfg + ":2): invalid value: must be a whole number of seconds from 1s to 32767s, or 0 for 15s",
		}, r.stderrLines())
	})
}

// TestCheckRefusesAddresses: check refuses a port out of range, and a
// listener on an address another one of the same process listens on
// (before: --admin equal to --addr was valid, and a third of the TLS
// connections landed on the plain admin listener).
func TestCheckRefusesAddresses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--admin", "127.0.0.1:8443"},
			`fastserve: --admin=127.0.0.1:8443 (flag --admin): invalid value: must be an address --addr does not listen on too (--addr is ":8443")`},
		{[]string{"--addr", "127.0.0.1:9443", "--redirect-http", ":9443"},
			`fastserve: --redirect-http=:9443 (flag --redirect-http): invalid value: must be an address --addr does not listen on too (--addr is "127.0.0.1:9443")`},
		{[]string{"--addr", ":99999"},
			`fastserve: --addr=:99999 (flag --addr): invalid value: must be host:port with a port from 0 to 65535, such as ":8443" or "127.0.0.1:0"`},
	} {
		r := run(t, childEnv(t), append([]string{"check"}, tc.args...)...)
		assert.Equal(t, 2, r.code, "%v", tc.args)
		assert.Equal(t, tc.want+"\n", r.stderr, "%v", tc.args)
	}
	r := run(t, childEnv(t), "check", "--addr", "127.0.0.1:9443", "--admin", "127.0.0.2:9443")
	assert.Equal(t, 0, r.code, "two hosts on one port: %s", r.stderr)
}

// TestCertForceReplacesLinks: cert --force replaces a symbolic link at the
// key's path instead of writing through it, and the key is 0600 whatever
// the file it replaces was (before: the link's target was overwritten and
// kept its 0644).
func TestCertForceReplacesLinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := writeFile(t, dir, "elsewhere.txt", "not a key\n")
	require.NoError(t, os.Chmod(target, 0o644))
	keyFile, certFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	require.NoError(t, os.Symlink(target, keyFile))
	require.NoError(t, os.WriteFile(certFile, []byte("old"), 0o666))

	r := run(t, childEnv(t), "cert", "--cert-file", certFile, "--key-file", keyFile)
	assert.Equal(t, 1, r.code, "without --force an existing path is kept")
	assert.Contains(t, r.stderr, "use --force to overwrite")

	r = run(t, childEnv(t), "cert", "--force", "--cert-file", certFile, "--key-file", keyFile)
	require.Equal(t, 0, r.code, r.stderr)
	got, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "not a key\n", string(got), "the link's target is untouched")
	fi, err := os.Lstat(keyFile)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the link was replaced by the key")
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fi, err = os.Stat(certFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	assert.Empty(t, leftovers, "no temporary file left")
}

// TestUnknownEnvironment: a FASTSERVE_* variable that names no setting is
// an error, as an unknown config file key is (before: ignored in silence,
// so a misspelt one took no effect).
func TestUnknownEnvironment(t *testing.T) {
	t.Parallel()
	r := run(t, childEnv(t, "FASTSERVE_KEEPALIVE_IDEL=30s"), "check")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "fastserve: environment FASTSERVE_KEEPALIVE_IDEL: unknown setting (did you mean FASTSERVE_KEEPALIVE_IDLE?); "+
		"variables are FASTSERVE_ and a flag's name of 'fastserve serve --help', upper case, _ for -\n", r.stderr)
	r = run(t, childEnv(t, "FASTSERVE_KEEPALIVE_IDLE=30s", "FASTSERVE_CONFIG="), "check")
	assert.Equal(t, 0, r.code, r.stderr)
}

// TestEnvironmentTakesEffectOrFails: every FASTSERVE_* variable takes
// effect or fails naming it (before: FASTSERVE_HELP=1 and an empty
// FASTSERVE_ROOT were accepted and did nothing). An empty value is an
// error but where empty is a choice of the setting (FASTSERVE_ADMIN=: no
// admin listener) and for FASTSERVE_CONFIG (no file).
func TestEnvironmentTakesEffectOrFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  string
		want string // the whole of stderr; empty: accepted
	}{
		{"FASTSERVE_HELP=1", "fastserve: environment FASTSERVE_HELP: unknown setting; variables are FASTSERVE_ and a flag's name of 'fastserve serve --help', upper case, _ for -"},
		{"FASTSERVE_ROOT=", "fastserve: environment FASTSERVE_ROOT: empty: give it a value, or unset it for the default (none)"},
		{"FASTSERVE_ADDR= ", "fastserve: environment FASTSERVE_ADDR: empty: give it a value, or unset it for the default (:8443)"},
		{"FASTSERVE_MAX_CONNS=", "fastserve: environment FASTSERVE_MAX_CONNS: empty: give it a value (a whole number), or unset it for the default (0)"},
		{"FASTSERVE_ACME=", "fastserve: environment FASTSERVE_ACME: empty: give it a value (names separated by commas), or unset it for the default (none)"},
		{"FASTSERVE_ADMIN=", ""},
		{"FASTSERVE_CONFIG=", ""},
	} {
		r := run(t, childEnv(t, tc.env), "check")
		if tc.want == "" {
			assert.Equal(t, 0, r.code, "%s: %s", tc.env, r.stderr)
			continue
		}
		assert.Equal(t, 2, r.code, tc.env)
		assert.Equal(t, tc.want+"\n", r.stderr, tc.env)
	}
	file := writeFile(t, t.TempDir(), "help.yaml", "help: true\n")
	r := run(t, childEnv(t), "check", "--config", file)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `unknown setting "help"`)
	r = run(t, childEnv(t, "FASTSERVE_ADMIN="), "check")
	assert.Contains(t, r.stdout, "admin:   # environment FASTSERVE_ADMIN\n")
}

// TestErrorsNameFlags: an error about a setting names the settings, not
// the library fields they set (before: "with KeepIdleBuffers", "without
// Tune.ReusePort").
func TestErrorsNameFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--reduce-memory=false", "--idle-park-after", "2s"},
			"fastserve: --idle-park-after=2s (flag --idle-park-after): invalid value: must be 0 or negative with --reduce-memory=false"},
		{[]string{"--reuseport=false", "--listeners", "2"},
			"fastserve: --listeners=2 (flag --listeners): invalid value: must be 1 or 0 without --reuseport (several listeners share one address by SO_REUSEPORT)"},
	} {
		r := run(t, childEnv(t), append([]string{"check"}, tc.args...)...)
		assert.Equal(t, 2, r.code, "%v", tc.args)
		assert.Equal(t, tc.want+"\n", r.stderr, "%v", tc.args)
	}
}

// TestCheckPrintsEffective: check prints the values serve will use where
// the server derives them from what was given (before: 0 for max-conns,
// listeners, idle-park-after and tcp-user-timeout), and notes what is
// valid but takes no effect or surprises.
func TestCheckPrintsEffective(t *testing.T) {
	t.Parallel()
	r := run(t, childEnv(t, "GOMAXPROCS=3"), "check")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(r.stdout, "\n")
	assert.Contains(t, lines, "listeners: 3  # default, derived from 0")
	assert.Contains(t, lines, "idle-park-after: 1s  # default, derived from 0s")
	assert.Contains(t, lines, "tcp-user-timeout: 1m50s  # default, derived from 0s")
	assert.Regexp(t, `(?m)^max-conns: [1-9]\d*  # default, derived from 0$`, r.stdout)
	assert.NotContains(t, r.stdout, "# note:")
	r = run(t, childEnv(t), "check", "--acme", "a.test", "--acme-storage", "")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^acme-storage: \S+  # flag --acme-storage, derived from ""$`, r.stdout, "an empty value shows as empty")

	r = run(t, childEnv(t), "check", "--max-conns", "100", "--max-conns-per-ip", "200", "--drain-idle-timeout", "1m", "--listeners", "300")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "# note: a client address may open 200 connections, more than the 100 the server admits in all")
	assert.Contains(t, r.stdout, "# note: the drain gives an idle connection 1m0s for its next request, longer than the 30s the whole drain may take")
	assert.Contains(t, r.stdout, "# note: 300 listeners, each with its own socket and accept loop")
	assert.Contains(t, r.stdout, "\nlisteners: 300  # flag --listeners\n")

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	r = run(t, childEnv(t), "cert", "--cert-file", certFile, "--key-file", keyFile, "--valid-for", "72h")
	require.Equal(t, 0, r.code, r.stderr)
	r = run(t, childEnv(t), "check", "--cert", certFile, "--key", keyFile)
	require.Equal(t, 0, r.code, "a certificate that ends soon is a note, not an error: %s", r.stderr)
	assert.Regexp(t, `# note: certificate `+regexp.QuoteMeta(certFile)+` expires on \d{4}-\d\d-\d\dT\S+, within 7 days: renew it`, r.stdout)
	notes := certNotes([]certs.KeyPair{{CertFile: certFile, KeyFile: keyFile}}, time.Now().Add(100*time.Hour))
	require.Len(t, notes, 1)
	assert.Contains(t, notes[0], "certificate "+certFile+" expired on ")
}

// TestBadValuesExit2: every value the command refuses exits 2, in check
// and in serve alike, naming the setting (before: an ACME storage that
// cannot be made passed check and exited serve with 1; an access log
// that cannot be written passed check).
func TestBadValuesExit2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	short := writeFile(t, dir, "short.key", "x")
	for _, tc := range []struct {
		name    string
		args    []string
		setting string
	}{
		{"bad duration", []string{"--idle-timeout", "soon"}, "--idle-timeout"},
		{"bad port", []string{"--redirect-http", "127.0.0.1:70000"}, "--redirect-http"},
		{"missing cert file", []string{"--cert", filepath.Join(dir, "none.crt"), "--key", filepath.Join(dir, "none.key")}, "--cert"},
		{"short ticket key", []string{"--session-ticket-keys", short}, "--session-ticket-keys"},
		{"missing ticket key", []string{"--session-ticket-keys", filepath.Join(dir, "none.key")}, "--session-ticket-keys"},
		{"access log directory", []string{"--access-log", filepath.Join(dir, "none", "access.log")}, "--access-log"},
		{"access log not writable", []string{"--access-log", "/proc/fastserve-access.log"}, "--access-log"},
		{"ACME storage", []string{"--acme", "example.com", "--acme-storage", "/proc/fastserve-acme"}, "--acme-storage"},
		{"PROXY protocol", []string{"--proxy-protocol"}, "--proxy-protocol-from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, command := range []string{"check", "serve"} {
				args := append([]string{command, "--addr", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, tc.args...)
				r := run(t, childEnv(t), args...)
				assert.Equal(t, 2, r.code, "fastserve %s: %s", strings.Join(args, " "), r.stderr)
				assert.Contains(t, r.stderr, "fastserve: "+tc.setting+"=", command)
				assert.NotContains(t, r.stderr, "serving HTTPS", command)
			}
		})
	}
	_, err := os.Stat("/proc/fastserve-acme")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestRootUnderProxyRefused: --root with a proxy route for "/" would serve
// nothing (the route takes every request): check refuses it, naming both.
func TestRootUnderProxyRefused(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	r := run(t, childEnv(t), "check", "--root", root, "--proxy", "http://127.0.0.1:9001")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "fastserve: --root="+root+" (flag --root): takes no effect, since a proxy route for \"/\" takes every request (--proxy, or the config file's routes:)\n", r.stderr)
	file := writeFile(t, t.TempDir(), "routes.yaml", "routes:\n  - path: /api/\n    proxy: http://127.0.0.1:9001\n")
	r = run(t, childEnv(t), "check", "--root", root, "--config", file)
	assert.Equal(t, 0, r.code, "files serve what the routes do not: %s", r.stderr)
}

// TestProxyProtocolFromAny: --proxy-protocol-from any trusts every peer,
// as the one way to ask for it (before: an empty list did, silently);
// check says what it means, and serve starts with a warning.
func TestProxyProtocolFromAny(t *testing.T) {
	t.Parallel()
	r := run(t, childEnv(t), "check", "--proxy-protocol", "--proxy-protocol-from", "any")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "proxy-protocol-from: any  # flag --proxy-protocol-from\n")
	assert.Contains(t, r.stdout, "# note: every peer may send a PROXY header")
	in := serve(t, childEnv(t, "FASTSERVE_PROXY_PROTOCOL=true", "FASTSERVE_PROXY_PROTOCOL_FROM=any"), "serve")
	in.waitLog(`level=WARN msg="every peer may send a PROXY header`, 0)
	in.signal(15)
	assert.Equal(t, 0, in.wait(exitTimeout))
}

// TestCheckAccessLogDirectory: check refuses an access log in a directory
// that is not there, as serve would (before: check passed, serve failed).
func TestCheckAccessLogDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing", "access.log")
	r := run(t, childEnv(t), "check", "--access-log", path)
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "fastserve: --access-log="+path+" (flag --access-log): invalid value: want a file in an existing directory, or - for standard output\n", r.stderr)
}
