package main

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckRefusesIgnoredSettings: a setting that would take no effect,
// because what it requires is off, is refused with one line naming both
// settings and where each came from, whether it came from a flag, the
// environment or the config file.
func TestCheckRefusesIgnoredSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keepAliveFile := writeFile(t, dir, "keepalive.yaml", "keepalive: false\nkeepalive-count: 3\n")
	idleFile := writeFile(t, dir, "idle.yaml", "keepalive-idle: 30s\n")
	proxyFile := writeFile(t, dir, "proxy.yaml", "# no routes:\nproxy-max-conns: 10\n")
	accessLogFile := writeFile(t, dir, "access-log.yaml", "access-log-format: json\n")
	const (
		noKeepAlive = ": takes effect only with --keepalive, which is false (flag --keepalive)"
		noProxy     = ": takes effect only with --proxy or a routes: key in the config file or a site of sites: with one, which is empty (default)"
		noAccessLog = ": takes effect only with --access-log, which is empty (default)"
	)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"keepalive-idle", nil, []string{"--keepalive=false", "--keepalive-idle", "30s"},
			"--keepalive-idle=30s (flag --keepalive-idle)" + noKeepAlive},
		{"keepalive-interval", nil, []string{"--keepalive=false", "--keepalive-interval", "5s"},
			"--keepalive-interval=5s (flag --keepalive-interval)" + noKeepAlive},
		{"keepalive-count", nil, []string{"--keepalive=false", "--keepalive-count", "3"},
			"--keepalive-count=3 (flag --keepalive-count)" + noKeepAlive},
		{"keepalive in the environment", []string{"FASTSERVE_KEEPALIVE=false", "FASTSERVE_KEEPALIVE_IDLE=30s"}, nil,
			"--keepalive-idle=30s (environment FASTSERVE_KEEPALIVE_IDLE): takes effect only with --keepalive, which is false (environment FASTSERVE_KEEPALIVE)"},
		{"keepalive in the file", nil, []string{"--config", keepAliveFile},
			"--keepalive-count=3 (config file " + keepAliveFile + ":2): takes effect only with --keepalive, which is false (config file " + keepAliveFile + ":1)"},
		{"keepalive by flag, idle in the file", nil, []string{"--keepalive=false", "--config", idleFile},
			"--keepalive-idle=30s (config file " + idleFile + ":1)" + noKeepAlive},
		{"out of range and ignored: one line", nil, []string{"--keepalive=false", "--keepalive-idle", "500ms"},
			"--keepalive-idle=500ms (flag --keepalive-idle)" + noKeepAlive},

		{"proxy-host-header", nil, []string{"--proxy-host-header", "upstream"},
			"--proxy-host-header=upstream (flag --proxy-host-header)" + noProxy},
		{"proxy-connect-timeout", nil, []string{"--proxy-connect-timeout", "2s"},
			"--proxy-connect-timeout=2s (flag --proxy-connect-timeout)" + noProxy},
		{"proxy-timeout", nil, []string{"--proxy-timeout", "5s"},
			"--proxy-timeout=5s (flag --proxy-timeout)" + noProxy},
		{"proxy-max-conns", nil, []string{"--proxy-max-conns", "10"},
			"--proxy-max-conns=10 (flag --proxy-max-conns)" + noProxy},
		{"proxy-health-path", nil, []string{"--proxy-health-path", "/healthz"},
			"--proxy-health-path=/healthz (flag --proxy-health-path)" + noProxy},
		{"proxy-health-interval", nil, []string{"--proxy-health-interval", "1h"},
			"--proxy-health-interval=1h0m0s (flag --proxy-health-interval)" + noProxy},
		{"proxy in the environment", []string{"FASTSERVE_PROXY_TIMEOUT=5s"}, nil,
			"--proxy-timeout=5s (environment FASTSERVE_PROXY_TIMEOUT)" + noProxy},
		{"proxy in the file", nil, []string{"--config", proxyFile},
			"--proxy-max-conns=10 (config file " + proxyFile + ":2)" + noProxy},

		{"access-log-format", nil, []string{"--access-log-format", "json"},
			"--access-log-format=json (flag --access-log-format)" + noAccessLog},
		{"access-log-format in the environment", []string{"FASTSERVE_ACCESS_LOG_FORMAT=json"}, nil,
			"--access-log-format=json (environment FASTSERVE_ACCESS_LOG_FORMAT)" + noAccessLog},
		{"access-log-format in the file", nil, []string{"--config", accessLogFile},
			"--access-log-format=json (config file " + accessLogFile + ":1)" + noAccessLog},
		{"access-log given empty", nil, []string{"--access-log", "", "--access-log-format", "json"},
			"--access-log-format=json (flag --access-log-format): takes effect only with --access-log, which is empty (flag --access-log)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, childEnv(t, tc.env...), append([]string{"check"}, tc.args...)...)
			assert.Equal(t, 2, r.code)
			assert.Equal(t, "fastserve: "+tc.want+"\n", r.stderr)
			assert.Empty(t, r.stdout, "no settings printed when they are invalid")
		})
	}

	t.Run("serve refuses too", func(t *testing.T) {
		t.Parallel()
		r := run(t, childEnv(t), "serve", "--addr", "127.0.0.1:0", "--admin", "", "--keepalive=false", "--keepalive-idle", "30s")
		assert.Equal(t, 2, r.code)
		assert.Equal(t, "fastserve: --keepalive-idle=30s (flag --keepalive-idle)"+noKeepAlive+"\n", r.stderr)
	})
}

// TestCheckAcceptsSettingsWithWhatTheyRequire: the same settings are
// valid, and shown, when what they require is on.
func TestCheckAcceptsSettingsWithWhatTheyRequire(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	routesFile := writeFile(t, dir, "routes.yaml", "routes:\n  - path: /api/\n    proxy: http://127.0.0.1:9001\nproxy-timeout: 5s\n")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want []string // lines of check's output
	}{
		{"keepalive by default", nil, []string{"--keepalive-idle", "30s", "--keepalive-count", "3"},
			[]string{"keepalive-idle: 30s  # flag --keepalive-idle", "keepalive-count: 3  # flag --keepalive-count"}},
		{"keepalive given", []string{"FASTSERVE_KEEPALIVE=true"}, []string{"--keepalive-interval", "5s"},
			[]string{"keepalive: true  # environment FASTSERVE_KEEPALIVE", "keepalive-interval: 5s  # flag --keepalive-interval"}},
		{"--proxy", []string{"FASTSERVE_PROXY=http://127.0.0.1:9001"}, []string{
			"--proxy-host-header", "upstream", "--proxy-connect-timeout", "2s", "--proxy-timeout", "5s",
			"--proxy-max-conns", "10", "--proxy-health-path", "/healthz", "--proxy-health-interval", "1h",
			"--proxy-request-buffering=false", "--proxy-body-buffer-bytes", "1024", "--proxy-body-temp-dir", dir,
		}, []string{
			"proxy: [http://127.0.0.1:9001]  # environment FASTSERVE_PROXY", "proxy-health-path: /healthz  # flag --proxy-health-path",
			"proxy-request-buffering: false  # flag --proxy-request-buffering", "proxy-body-temp-dir: " + dir + "  # flag --proxy-body-temp-dir",
		}},
		{"routes: in the file", nil, []string{"--config", routesFile},
			[]string{"proxy-timeout: 5s  # config file " + routesFile + ":4"}},
		{"--access-log", nil, []string{"--access-log", "-", "--access-log-format", "json"},
			[]string{"access-log-format: json  # flag --access-log-format"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, childEnv(t, tc.env...), append([]string{"check"}, tc.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			lines := strings.Split(r.stdout, "\n")
			for _, want := range tc.want {
				assert.Contains(t, lines, want)
			}
		})
	}
}

// requirements are the settings that take effect only with another.
var requirements = map[string]string{
	"acme-email":                 "acme",
	"acme-ca":                    "acme",
	"acme-ca-root":               "acme",
	"acme-storage":               "acme",
	"keepalive-idle":             "keepalive",
	"keepalive-interval":         "keepalive",
	"keepalive-count":            "keepalive",
	"proxy-protocol-from":        "proxy-protocol",
	"proxy-protocol-timeout":     "proxy-protocol",
	"access-log-format":          "access-log",
	"dotfiles":                   "root",
	"admin-profiles":             "admin",
	"proxy-error-details":        "proxy",
	"proxy-host-header":          "proxy",
	"proxy-connect-timeout":      "proxy",
	"proxy-timeout":              "proxy",
	"proxy-upgrade-idle-timeout": "proxy",
	"proxy-max-fails":            "proxy",
	"proxy-max-conns-per-client": "proxy",
	"proxy-max-conns":            "proxy",
	"proxy-health-path":          "proxy",
	"proxy-health-interval":      "proxy",
	"proxy-request-buffering":    "proxy",
	"proxy-body-buffer-bytes":    "proxy",
	"proxy-body-temp-dir":        "proxy",
	"proxy-max-header-bytes":     "proxy",
	"share-port":                 "reuseport",
	"rate-limit-burst":           "rate-limit",
	"rate-limit-key":             "rate-limit",
	"rate-limit-dry-run":         "rate-limit",
}

// TestEveryRequirementIsChecked: each setting of the table that requires
// another, given alone (what it requires turned off, if it is on by
// default), is refused naming both.
func TestEveryRequirementIsChecked(t *testing.T) {
	t.Parallel()
	got := map[string]string{}
	for _, r := range table {
		if r.needs != "" {
			got[r.name] = r.needs
		}
	}
	assert.Equal(t, requirements, got, "the table's requirements")

	for _, r := range table {
		if r.needs == "" {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"check", "--" + r.name + "=" + sample(t, r.def)}
			switch def := row(r.needs).def.(type) {
			case bool:
				if def {
					args = append(args, "--"+r.needs+"=false")
				}
			case string:
				if def != "" {
					args = append(args, "--"+r.needs+"=") // on by default: turned off
				}
			default:
				require.Zero(t, reflect.ValueOf(def).Len(), "--%s is off by default", r.needs)
			}
			res := run(t, childEnv(t), args...)
			assert.Equal(t, 2, res.code)
			require.Len(t, res.stderrLines(), 1, res.stderr)
			assert.Regexp(t, `^fastserve: --`+r.name+`=\S+ \(flag --`+r.name+`\): takes effect only with --`+r.needs+`\b.*, which is (false|empty) \((default|flag --`+r.needs+`)\)$`, res.stderrLines()[0])
		})
	}
}

// sample is a value, not the default, for a setting whose default is def.
func sample(t *testing.T, def any) string {
	t.Helper()
	switch def := def.(type) {
	case bool:
		return fmt.Sprint(!def)
	case int:
		return fmt.Sprint(def + 1)
	case string:
		return def + "x"
	case time.Duration:
		return (def + time.Second).String()
	case networks:
		return "10.0.0.0/8"
	case []string, commaSeparated:
		return "x"
	}
	t.Fatalf("no sample value for a setting of type %T", def)
	return ""
}

// TestTableFields: every library field the table names exists, and the
// setting's value (converted, if the row says how) can be set in it; so a
// library field renamed breaks this test, not the error messages. Error
// translation finds each setting by its field.
func TestTableFields(t *testing.T) {
	t.Parallel()
	s := &settings{}
	s.register(pflag.NewFlagSet("serve", pflag.ContinueOnError))
	names := map[string]bool{}
	for _, r := range table {
		t.Run(r.name, func(t *testing.T) {
			assert.False(t, names[r.name], "the name is the table's once")
			names[r.name] = true
			vt := s.value(r.name).Type()
			if r.valid != nil {
				assert.Equal(t, reflect.FuncOf([]reflect.Type{vt}, []reflect.Type{reflect.TypeFor[string]()}, false), reflect.TypeOf(r.valid), "wants")
			}
			if r.needs != "" {
				i := slices.IndexFunc(table, func(n setting) bool { return n.name == r.needs })
				require.NotEqual(t, -1, i, "--%s requires --%s, which is no setting", r.name, r.needs)
				assert.Empty(t, table[i].needs, "--%s requires --%s, which requires another", r.name, r.needs)
			}
			if r.field == "" {
				assert.Nil(t, r.conv, "a conversion with no field")
				assert.Nil(t, r.setter, "a setter with no field")
				return
			}
			ft, list, err := fieldType(reflect.TypeFor[configs](), r.field)
			require.NoError(t, err)
			got, ok := fieldSetting(r.field)
			if assert.True(t, ok, "explain finds a setting for %s", r.field) {
				assert.Equal(t, r.name, got.name, "the setting explain names for %s", r.field)
			}
			switch {
			case r.setter != nil:
				assert.Equal(t, reflect.FuncOf([]reflect.Type{reflect.TypeFor[*configs](), vt}, nil, false), reflect.TypeOf(r.setter), "by")
				return
			case r.conv != nil:
				ct := reflect.TypeOf(r.conv)
				require.Equal(t, reflect.Func, ct.Kind(), "via")
				require.True(t, ct.NumIn() == 1 && ct.NumOut() == 1 && ct.In(0) == vt, "via: want a func(%v) V, got %v", vt, ct)
				vt = ct.Out(0)
			}
			if list {
				require.Equal(t, reflect.Slice, vt.Kind(), "a setting for every element of %s is a list", r.field)
				vt = vt.Elem()
			}
			assert.True(t, vt.AssignableTo(ft), "%s is a %v: a %v cannot be set in it", r.field, ft, vt)
		})
	}
}

// fieldType is the type of the field at path in t, as assign reads the
// path; list says whether it is reached through a list's elements.
func fieldType(t reflect.Type, path string) (ft reflect.Type, list bool, err error) {
	for name := range strings.SplitSeq(path, ".") {
		name, each := strings.CutSuffix(name, "[]")
		if t.Kind() != reflect.Struct {
			return nil, false, fmt.Errorf("%s: %v has no field %s", path, t, name)
		}
		f, ok := t.FieldByName(name)
		if !ok {
			return nil, false, fmt.Errorf("%s: %v has no field %s", path, t, name)
		}
		t = f.Type
		if each {
			if t.Kind() != reflect.Slice || list {
				return nil, false, fmt.Errorf("%s: %s is not a list, or a list in a list", path, name)
			}
			t, list = t.Elem(), true
		}
	}
	return t, list, nil
}

// TestNetworksAny: "any" is every IPv4 and IPv6 address, and prints back
// as any; beside networks it adds to them.
func TestNetworksAny(t *testing.T) {
	var n networks
	require.NoError(t, n.Set("any"))
	assert.Equal(t, "any", n.String())
	assert.Equal(t, networks{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}, n)
	var m networks
	require.NoError(t, m.Set("10.0.0.0/8,any"))
	assert.Equal(t, "10.0.0.0/8,0.0.0.0/0,::/0", m.String())
	assert.Error(t, new(networks).Set("anywhere"))
}

// TestProxyProtocolNeedsItsBalancers: the settings with --proxy-protocol
// and no --proxy-protocol-from are refused, naming the setting and what
// it takes (before: every peer was trusted to say who the client is).
func TestProxyProtocolNeedsItsBalancers(t *testing.T) {
	for _, tc := range []struct {
		from string
		want string // in the error; empty: valid
	}{
		{"", "--proxy-protocol-from= (default): invalid value: must be the load balancers' networks, as CIDR[,CIDR...]"},
		{"any", ""},
		{"10.0.0.0/8", ""},
	} {
		s := &settings{}
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		s.register(fs)
		args := []string{"--proxy-protocol"}
		if tc.from != "" {
			args = append(args, "--proxy-protocol-from", tc.from)
		}
		require.NoError(t, fs.Parse(args))
		require.NoError(t, s.load(fs, func(string) (string, bool) { return "", false }))
		c, err := s.build()
		require.NoError(t, err)
		err = s.explain(c.Server.Validate(), "Server")
		if tc.want == "" {
			assert.NoError(t, err, "--proxy-protocol-from %q", tc.from)
			continue
		}
		assert.ErrorContains(t, err, tc.want)
		assert.Contains(t, err.Error(), "or any to trust every peer")
	}
}

// TestConfigSyntaxErrorLine: a YAML syntax error names the line at
// fault, not the line where its enclosing block starts (the yaml
// library's line: 5 for the misplaced key on line 8 below), past a
// flow sequence over two lines, with or without a final newline.
func TestConfigSyntaxErrorLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const site = "addr: 127.0.0.1:0\nsites:\n  - hosts: [a.example,\n      b.example]\n    proxy: [http://127.0.0.1:9]\n    routes:\n      - path: /a/\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"misplaced key", site + "        proxy: [http://127.0.0.1:9]\n      compress: true\n", ":9: yaml: did not find expected '-' indicator"},
		{"unended", site + "      compress: true", ":8: yaml: did not find expected '-' indicator"},
		{"unclosed flow", site + "        proxy: [http://127.0.0.1:9\n        compress: true\n", ":8: yaml: did not find expected ',' or ']'"},
		{"indent", "addr: 127.0.0.1:0\nsites:\n  - hosts: [a.example]\n     proxy: x\n", ":4: yaml: did not find expected key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.yaml)
			r := run(t, nil, "check", "--config", f)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Equal(t, []string{"fastserve: config file " + f + tc.want}, r.stderrLines())
		})
	}
}
