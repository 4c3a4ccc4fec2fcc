package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVersionFlag: 'fastserve --version' prints what 'fastserve version'
// does: the module's version and, in a binary built from a git checkout,
// its revision, from the build information; and the Go release it was
// built with.
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	flag := run(t, childEnv(t), "--version")
	require.Equal(t, 0, flag.code, flag.stderr)
	assert.Empty(t, flag.stderr)
	assert.Equal(t, run(t, childEnv(t), "version").stdout, flag.stdout)

	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	require.NoError(t, err, "go env GOVERSION")
	assert.Contains(t, flag.stdout, ", "+strings.TrimSpace(string(goVersion))+" ", "the Go release that built the binary")
}

// TestVersionRevision builds the command with VCS stamping on (GOFLAGS may
// turn it off, as on these machines) and finds the checkout's revision in
// --version.
func TestVersionRevision(t *testing.T) {
	t.Parallel()
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout, or no git: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "fastserve")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	v, err := exec.Command(bin, "--version").Output()
	require.NoError(t, err)
	assert.Regexp(t, `^fastserve v\S+ `+string(rev[:12])+` \(fasthttp v\d+\.\d+\.\d+, go1\.\S+ \w+/\w+\)\n$`, string(v))
}
