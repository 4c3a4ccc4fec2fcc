// Package examples_test keeps the files a newcomer copies true: the example
// config file passes 'fastserve check' and names every setting, the systemd
// units are the ones the README shows, the README's config example passes
// too, the Dockerfile builds with go.mod's toolchain, and shell completion
// works. It drives the built command as an operator does.
package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// binary is the fastserve command built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fastserve-examples-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot make a directory for the fastserve binary:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "fastserve")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", binary, "../cmd/fastserve").CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot build fastserve: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a command that ran to its end left.
type result struct {
	stdout, stderr string
	code           int
}

// run runs fastserve with args, with no FASTSERVE_* variable set, to its end.
func run(t testing.TB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FASTSERVE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "fastserve %s did not exit", strings.Join(args, " "))
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		require.NoError(t, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// checked is what 'fastserve check' printed: each setting's value and
// where it came from, by name.
type checked map[string]struct{ value, source string }

var checkLine = regexp.MustCompile(`^([a-z][a-z0-9-]*): (.*?)  # (.*)$`)

func check(t testing.TB, args ...string) checked {
	t.Helper()
	r := run(t, append([]string{"check"}, args...)...)
	require.Equal(t, 0, r.code, "fastserve check %s:\n%s", strings.Join(args, " "), r.stderr)
	require.Contains(t, r.stdout, "# settings are valid\n")
	out := checked{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if m := checkLine.FindStringSubmatch(line); m != nil {
			out[m[1]] = struct{ value, source string }{m[2], m[3]}
		}
	}
	require.NotEmpty(t, out, "check printed no settings")
	return out
}

// host is a stand-in for the paths an example names on a real host: its
// directories made under a temporary one, with a certificate and key for
// each name in certs, and a session ticket key.
type host struct {
	dir  string
	repl *strings.Replacer
}

func newHost(t testing.TB, certs ...string) host {
	t.Helper()
	h := host{dir: t.TempDir()}
	for _, d := range []string{"etc", "www", "log", "run"} {
		require.NoError(t, os.Mkdir(filepath.Join(h.dir, d), 0o755))
	}
	for _, name := range certs {
		r := run(t, "cert", "--host", name,
			"--cert-file", filepath.Join(h.dir, "etc", name+".crt"), "--key-file", filepath.Join(h.dir, "etc", name+".key"))
		require.Equal(t, 0, r.code, r.stderr)
	}
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "etc", "ticket.key"), bytes.Repeat([]byte{7}, 80), 0o600))
	h.repl = strings.NewReplacer(
		"/etc/fastserve/", h.dir+"/etc/",
		"/srv/www", h.dir+"/www",
		"/var/log/fastserve/", h.dir+"/log/",
		"/run/fastserve/", h.dir+"/run/",
	)
	return h
}

// config writes yaml, with the host's paths in place of the real ones, and
// returns its path.
func (h host) config(t testing.TB, name, yaml string) string {
	t.Helper()
	path := filepath.Join(h.dir, name)
	require.NoError(t, os.WriteFile(path, []byte(h.repl.Replace(yaml)), 0o644))
	return path
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// settingsIn are the keys the example config sets, and those it shows
// commented out (#key: value).
func settingsIn(t testing.TB, yaml string) (set, commented []string) {
	t.Helper()
	key := regexp.MustCompile(`^(#?)([a-z][a-z0-9-]*):`)
	sc := bufio.NewScanner(strings.NewReader(yaml))
	for sc.Scan() {
		if m := key.FindStringSubmatch(sc.Text()); m != nil {
			if m[1] == "" {
				set = append(set, m[2])
			} else {
				commented = append(commented, m[2])
			}
		}
	}
	return set, commented
}

// TestExampleConfig: examples/fastserve.yaml passes 'fastserve check' as
// it is (its paths made on a stand-in host), every key it sets is taken
// from it, and it names every setting, once.
func TestExampleConfig(t *testing.T) {
	yaml := readFile(t, "fastserve.yaml")
	h := newHost(t, "example.com")
	got := check(t, "--config", h.config(t, "fastserve.yaml", yaml))

	set, commented := settingsIn(t, yaml)
	require.NotEmpty(t, set)
	for _, name := range set {
		if assert.Contains(t, got, name, "%s: not a setting of 'fastserve check'", name) {
			assert.Contains(t, got[name].source, "config file", "%s: not taken from the file", name)
		}
	}
	all := slices.Concat(set, commented)
	for name := range got {
		assert.Contains(t, all, name, "setting %s is missing from examples/fastserve.yaml (set it, or show it as #%s: value)", name, name)
	}
	for _, name := range all {
		if name != "routes" && name != "sites" {
			assert.Contains(t, got, name, "examples/fastserve.yaml names %s, which is no setting", name)
		}
		assert.Equal(t, 1, strings.Count(yaml, "\n"+name+":")+strings.Count(yaml, "\n#"+name+":"), "%s is named more than once", name)
	}
}

// TestExampleConfigCommentedValues: every value the example shows
// commented out is one check accepts, with the few whose combination the
// example's own settings forbid put right (a PROXY-protocol setting needs
// proxy-protocol on; a proxy for every request leaves root: nothing).
func TestExampleConfigCommentedValues(t *testing.T) {
	yaml := readFile(t, "fastserve.yaml")
	uncomment := regexp.MustCompile(`(?m)^#([a-z]|  )`)
	yaml = uncomment.ReplaceAllString(yaml, "$1")
	yaml = strings.Replace(yaml, "\nproxy-protocol: false", "\nproxy-protocol: true", 1)
	yaml = regexp.MustCompile(`(?m)^proxy: .*$`).ReplaceAllString(yaml, "")
	h := newHost(t, "example.com")
	got := check(t, "--config", h.config(t, "all.yaml", yaml))
	_, commented := settingsIn(t, readFile(t, "fastserve.yaml"))
	for _, name := range commented {
		if name != "routes" && name != "proxy" && name != "sites" {
			assert.Contains(t, got[name].source, "config file", "#%s: not taken from the file once uncommented", name)
		}
	}
}

// block is the fenced block of lang that follows marker in the README.
func block(t testing.TB, readme, marker, lang string) string {
	t.Helper()
	i := strings.Index(readme, marker)
	require.GreaterOrEqual(t, i, 0, "README.md no longer has %q", marker)
	start := strings.Index(readme[i:], "```"+lang+"\n")
	require.GreaterOrEqual(t, start, 0, "no ```%s block after %q", lang, marker)
	body := readme[i+start+len("```"+lang+"\n"):]
	end := strings.Index(body, "```\n")
	require.GreaterOrEqual(t, end, 0)
	return body[:end]
}

// TestSystemdUnitsAreTheREADMEs: the unit files in examples/systemd are
// byte for byte the ones the README shows.
func TestSystemdUnitsAreTheREADMEs(t *testing.T) {
	readme := readFile(t, "../README.md")
	for _, name := range []string{"fastserve.service", "fastserve@.service"} {
		t.Run("unit="+name, func(t *testing.T) {
			shown := block(t, readme, "(`/etc/systemd/system/"+name+"`):", "ini")
			assert.Equal(t, shown, readFile(t, filepath.Join("systemd", name)),
				"examples/systemd/%s differs from the README's: change both", name)
			assert.Contains(t, shown, "--config /etc/fastserve/fastserve.yaml", "the unit reads the example config's path")
			assert.Contains(t, shown, "\n[Install]\nWantedBy=multi-user.target\n", "systemctl enable needs an [Install] section")
		})
	}
}

// TestREADMEConfigExample: the config file the README shows passes check.
func TestREADMEConfigExample(t *testing.T) {
	yaml := block(t, readFile(t, "../README.md"), "Config file example", "yaml")
	h := newHost(t, "example.com", "example.org")
	got := check(t, "--config", h.config(t, "readme.yaml", yaml))
	assert.Equal(t, "["+h.dir+"/etc/example.com.crt,"+h.dir+"/etc/example.org.crt]", got["cert"].value)
}

// TestREADMERateLimitExample: the README's rate limits example passes
// check, every limit of it read.
func TestREADMERateLimitExample(t *testing.T) {
	yaml := block(t, readFile(t, "../README.md"), "## Rate limits", "yaml")
	r := run(t, "check", "--config", newHost(t).config(t, "ratelimit.yaml", yaml))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "route=/login->http://127.0.0.1:9004 (rate-limit=6/m,burst=2)")
	assert.Contains(t, r.stdout, "(rate-limit=600/m,burst=50,key=header:X-Api-Key,dry-run) rate-limit=10/s,burst=20  #")
	assert.Regexp(t, `(?m)^rate-limit: 20/s  # config file `, r.stdout)
}

// TestDockerfileToolchain: the Dockerfile builds with the Go release that
// go.mod's toolchain line names.
func TestDockerfileToolchain(t *testing.T) {
	m := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindStringSubmatch(readFile(t, "../go.mod"))
	require.NotNil(t, m, "go.mod has no toolchain line")
	assert.Contains(t, readFile(t, "../Dockerfile"), "\nARG GO_VERSION="+m[1]+"\n")
}

// TestCompletion: 'fastserve completion SHELL' writes a script for each
// shell the README names, and the command is listed in the help.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "complete -o default -F __start_fastserve fastserve",
		"zsh":  "#compdef fastserve",
		"fish": "complete -c fastserve ",
	} {
		t.Run("shell="+shell, func(t *testing.T) {
			r := run(t, "completion", shell)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Contains(t, r.stdout, want)
		})
	}
	help := run(t, "--help")
	require.Equal(t, 0, help.code)
	assert.Regexp(t, `(?m)^  completion\s+Generate the autocompletion script`, help.stdout)
	// What a shell asks when the user types 'fastserve serve --keepa<TAB>'.
	r := run(t, "__complete", "serve", "--keepa")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "--keepalive-idle\t")
}
