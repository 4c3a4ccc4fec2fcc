package layout_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/fastserve/fastserve"

// pkg is what go list says of one package of the module.
type pkg struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	TestGoFiles  []string
	XTestGoFiles []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// imports are the package's imports of the module, by kind.
func (p pkg) imports(tests bool) []string {
	all := slices.Clone(p.Imports)
	if tests {
		all = append(all, p.TestImports...)
		all = append(all, p.XTestImports...)
	}
	var own []string
	for _, i := range all {
		if i == module || strings.HasPrefix(i, module+"/") {
			own = append(own, strings.TrimPrefix(strings.TrimPrefix(i, module), "/"))
		}
	}
	return own
}

func (p pkg) rel() string { return strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/") }

var leaves = []string{"accesslog", "certs", "compress", "handover", "proxy", "proxyproto", "ratelimit", "sites", "static"}

// A rule forbids some packages (from) some imports (to); tests says
// whether their tests' imports count too.
type rule struct {
	why   string
	from  func(rel string) bool
	to    func(imp string) bool
	tests bool
}

func is(names ...string) func(string) bool {
	return func(s string) bool { return slices.Contains(names, s) }
}

func under(prefix string) func(string) bool {
	return func(s string) bool { return s == prefix || strings.HasPrefix(s, prefix+"/") }
}

func anyOf(string) bool { return true }

var rules = []rule{
	{"the engine knows no feature served through it", is("server"), is("compress", "proxy", "sites", "static"), true},
	{"a leaf never imports the engine", is(leaves...), is("server"), true},
	{"tune imports nothing of the module", is("tune"), anyOf, false},
	{"nothing imports the command", anyOf, under("cmd"), true},
	{"the bench library does not import the engine", is("bench"), is("server"), false},
}

// violations lists every forbidden arrow in pkgs.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		for _, r := range rules {
			if !r.from(p.rel()) {
				continue
			}
			for _, imp := range p.imports(r.tests) {
				if r.to(imp) && imp != p.rel() {
					out = append(out, fmt.Sprintf("%s imports %s: %s", p.rel(), imp, r.why))
				}
			}
		}
	}
	return out
}

func list(t *testing.T) []pkg {
	t.Helper()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	require.NoError(t, err, "go list -m")
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = strings.TrimSpace(string(root))
	out, err := cmd.Output()
	require.NoError(t, err, "go list ./...")
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		require.NoError(t, dec.Decode(&p))
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

// TestImportRules: the module's import graph has no forbidden arrow, and
// every leaf exists.
func TestImportRules(t *testing.T) {
	pkgs := list(t)
	assert.Empty(t, violations(pkgs))
	var names []string
	for _, p := range pkgs {
		names = append(names, p.rel())
	}
	for _, l := range append(slices.Clone(leaves), "server", "tune", "bench") {
		assert.Contains(t, names, l, "package %s exists", l)
	}
}

// TestImportRulesCatch: each rule reports the arrow it forbids, so that
// TestImportRules can fail.
func TestImportRulesCatch(t *testing.T) {
	for _, tc := range []struct {
		p    pkg
		want string
	}{
		{pkg{ImportPath: module + "/server", Imports: []string{module + "/proxy"}}, "server imports proxy"},
		{pkg{ImportPath: module + "/server", XTestImports: []string{module + "/static"}}, "server imports static"},
		{pkg{ImportPath: module + "/proxy", Imports: []string{module + "/server"}}, "proxy imports server"},
		{pkg{ImportPath: module + "/certs", TestImports: []string{module + "/server"}}, "certs imports server"},
		{pkg{ImportPath: module + "/tune", Imports: []string{module + "/internal/field"}}, "tune imports internal/field"},
		{pkg{ImportPath: module + "/server", Imports: []string{module + "/cmd/fastserve"}}, "server imports cmd/fastserve"},
		{pkg{ImportPath: module + "/bench", Imports: []string{module + "/server"}}, "bench imports server"},
	} {
		got := violations([]pkg{tc.p})
		if assert.Len(t, got, 1, tc.want) {
			assert.True(t, strings.HasPrefix(got[0], tc.want), "%q", got[0])
		}
	}
	// Allowed: the engine's own leaves, tune's tests' helpers, the peers.
	assert.Empty(t, violations([]pkg{
		{ImportPath: module + "/server", Imports: []string{module + "/certs", module + "/tune", module + "/handover"}},
		{ImportPath: module + "/tune", TestImports: []string{module + "/internal/netnstest"}},
		{ImportPath: module + "/bench/peers/fastservehandler", Imports: []string{module + "/server"}},
		{ImportPath: module + "/bench", XTestImports: []string{module + "/server"}},
	}))
}

// assertsToServer lists the type assertions and switches to a type of
// package server in the Go files given.
func assertsToServer(t *testing.T, files []string) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, 0)
		require.NoError(t, err)
		local := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == `"`+module+`/server"` {
				local = "server"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var typ ast.Expr
			switch x := n.(type) {
			case *ast.TypeAssertExpr:
				typ = x.Type
			case *ast.CaseClause:
				for _, e := range x.List {
					if namesServer(e, local) {
						out = append(out, fmt.Sprintf("%s: a type switch to %s's type", fset.Position(e.Pos()), local))
					}
				}
				return true
			}
			if typ != nil && namesServer(typ, local) {
				out = append(out, fmt.Sprintf("%s: a type assertion to %s's type", fset.Position(typ.Pos()), local))
			}
			return true
		})
	}
	return out
}

func namesServer(e ast.Expr, local string) bool {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == local
}

// TestNoAssertionToServerTypes: outside server, no code reaches into the
// engine's types by a type assertion.
func TestNoAssertionToServerTypes(t *testing.T) {
	var files []string
	for _, p := range list(t) {
		if p.rel() == "server" {
			continue
		}
		for _, names := range [][]string{p.GoFiles, p.TestGoFiles, p.XTestGoFiles} {
			for _, n := range names {
				files = append(files, filepath.Join(p.Dir, n))
			}
		}
	}
	assert.Empty(t, assertsToServer(t, files))

	// And the check sees one.
	bad := filepath.Join(t.TempDir(), "bad.go")
	src := "package bad\nimport srv \"" + module + "/server\"\nfunc f(x any) bool { _, ok := x.(*srv.Server); return ok }\n"
	require.NoError(t, writeFile(bad, src))
	assert.Len(t, assertsToServer(t, []string{bad}), 1)
}

// serverBudget bounds the engine's non-test lines, every platform's
// files counted: server/ is the connection engine and nothing else
// (issue 15); a feature that needs more there pays for it in the same
// change, or belongs in a leaf.
const serverBudget = 3500

func TestServerBudget(t *testing.T) {
	var dir string
	for _, p := range list(t) {
		if p.rel() == "server" {
			dir = p.Dir
		}
	}
	require.NotEmpty(t, dir)
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	lines := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		lines += bytes.Count(b, []byte{'\n'})
	}
	assert.LessOrEqual(t, lines, serverBudget, "server/ non-test lines")
}
