// Package pebbletest runs Pebble, Let's Encrypt's test ACME CA, for a
// test: it builds pebble and pebble-challtestsrv at a pinned version with
// go install (once, cached under the user's cache directory), runs
// pebble-challtestsrv as the DNS server that answers 127.0.0.1 for every
// name, and runs Pebble on free loopback ports, validating challenges on
// the ports the test gives. Where the build fails (no go command, no module
// proxy) the test is skipped, saying why. Nothing leaves loopback.
package pebbletest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the Pebble release the tests run.
const Version = "v2.10.1"

const (
	module       = "github.com/letsencrypt/pebble/v2"
	buildTimeout = 3 * time.Minute
	readyTimeout = 15 * time.Second
)

// Options says where Pebble validates challenges and what it issues.
type Options struct {
	TLSPort  int // where the TLS-ALPN-01 challenge is checked, on 127.0.0.1
	HTTPPort int // where the HTTP-01 challenge is checked; if zero, a closed port

	// Validity is the lifetime of the certificates issued, in whole
	// seconds. If zero, 90 days.
	Validity time.Duration
}

// CA is a running Pebble.
type CA struct {
	// Directory is the URL of the ACME directory.
	Directory string
	// RootFile is the PEM root of Pebble's own HTTPS: what an ACME client
	// must trust to talk to it.
	RootFile string

	t          testing.TB
	management string // host:port of Pebble's management interface
	pebble     *exec.Cmd
	pebbleDone chan struct{}

	mu     sync.Mutex
	issued int
	log    []string
}

var (
	buildOnce sync.Once
	binDir    string
	modDir    string
	buildErr  error
)

// binaries builds pebble and pebble-challtestsrv into the user's cache
// directory unless they are there, and finds the module's directory.
func binaries() (bin, mod string, err error) {
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		// Outside any module, so that no go.mod or go.sum is touched.
		download := exec.CommandContext(ctx, goBin, "mod", "download", "-json", module+"@"+Version)
		download.Dir = os.TempDir()
		out, err := download.Output()
		if err != nil {
			buildErr = fmt.Errorf("go mod download %s@%s: %w", module, Version, err)
			return
		}
		var m struct{ Dir string }
		if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
			buildErr = fmt.Errorf("go mod download %s@%s: no Dir in %s", module, Version, out)
			return
		}
		modDir = m.Dir

		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		binDir = filepath.Join(cache, "fastserve-test", "pebble-"+Version)
		if have(binDir) {
			return
		}
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			buildErr = err
			return
		}
		// Build into a directory of our own, then move: another test
		// process may be building at the same time.
		tmp, err := os.MkdirTemp(binDir, "build-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(tmp)
		cmd := exec.CommandContext(ctx, goBin, "install", module+"/cmd/pebble@"+Version, module+"/cmd/pebble-challtestsrv@"+Version)
		cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0")
		cmd.Dir = os.TempDir()
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go install pebble@%s: %w\n%s", Version, err, b)
			return
		}
		for _, name := range []string{"pebble", "pebble-challtestsrv"} {
			if err := os.Rename(filepath.Join(tmp, name), filepath.Join(binDir, name)); err != nil {
				buildErr = err
				return
			}
		}
	})
	return binDir, modDir, buildErr
}

func have(dir string) bool {
	for _, name := range []string{"pebble", "pebble-challtestsrv"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// Start runs pebble-challtestsrv and Pebble until the test ends, and
// waits until Pebble answers. It skips the test if they cannot be built.
func Start(t testing.TB, o Options) *CA {
	t.Helper()
	bin, mod, err := binaries()
	if err != nil {
		t.Skipf("Pebble %s not built, so no ACME CA to test against: %v", Version, err)
	}
	dir := t.TempDir()

	dnsPort := freeUDPAndTCPPort(t)
	chall := exec.Command(filepath.Join(bin, "pebble-challtestsrv"),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort),
		"-management", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")
	chall.Stdout, chall.Stderr = io.Discard, io.Discard
	if err := chall.Start(); err != nil {
		t.Fatalf("start pebble-challtestsrv: %v", err)
	}
	t.Cleanup(func() { _ = chall.Process.Kill(); _ = chall.Wait() })

	httpPort := o.HTTPPort
	if httpPort == 0 {
		httpPort = freePort(t)
	}
	validity := int64(o.Validity / time.Second)
	if validity == 0 {
		validity = 90 * 24 * 3600
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ca := &CA{
		Directory:  "https://" + listen + "/dir",
		RootFile:   filepath.Join(mod, "test", "certs", "pebble.minica.pem"),
		t:          t,
		management: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		pebbleDone: make(chan struct{}),
	}
	config := map[string]any{"pebble": map[string]any{
		"listenAddress":           listen,
		"managementListenAddress": ca.management,
		"certificate":             filepath.Join(mod, "test", "certs", "localhost", "cert.pem"),
		"privateKey":              filepath.Join(mod, "test", "certs", "localhost", "key.pem"),
		"httpPort":                httpPort,
		"tlsPort":                 o.TLSPort,
		"ocspResponderURL":        "",
		"keyAlgorithm":            "ecdsa",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"profiles": map[string]any{
			"default": map[string]any{"description": "test", "validityPeriod": validity},
		},
	}}
	b, _ := json.Marshal(config)
	configFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(configFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ca.pebble = exec.Command(filepath.Join(bin, "pebble"), "-config", configFile,
		"-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort))
	ca.pebble.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once
		"PEBBLE_WFE_NONCEREJECT=0", // no made-up bad nonces
		"PEBBLE_AUTHZREUSE=0")      // every order validates
	out, err := ca.pebble.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ca.pebble.Stderr = ca.pebble.Stdout
	if err := ca.pebble.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ca.mu.Lock()
			ca.log = append(ca.log, sc.Text())
			if strings.Contains(sc.Text(), "Issued certificate serial") {
				ca.issued++
			}
			ca.mu.Unlock()
		}
		_ = ca.pebble.Wait()
		close(ca.pebbleDone)
	}()
	t.Cleanup(ca.Stop)

	c := ca.client()
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := c.Get(ca.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pebble not answering %s within %v: %v\n%s", ca.Directory, readyTimeout, err, ca.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !waitDial(fmt.Sprintf("127.0.0.1:%d", dnsPort), readyTimeout) {
		t.Fatalf("pebble-challtestsrv not listening on 127.0.0.1:%d within %v", dnsPort, readyTimeout)
	}
	return ca
}

// client talks to Pebble's HTTPS, trusting RootFile.
func (ca *CA) client() *http.Client {
	pool := x509.NewCertPool()
	b, err := os.ReadFile(ca.RootFile)
	if err != nil || !pool.AppendCertsFromPEM(b) {
		ca.t.Fatalf("Pebble's root %s: %v", ca.RootFile, err)
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Proxy: nil},
	}
}

// Roots is the pool of Pebble's issuing root, from its management
// interface: what a client of the issued certificates trusts.
func (ca *CA) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := ca.client().Get("https://" + ca.management + "/roots/0")
	if err != nil {
		t.Fatalf("GET Pebble's root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET Pebble's root: %d %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("Pebble's root: no PEM certificate in %q", b)
	}
	return pool
}

// Issued is how many certificates Pebble has issued.
func (ca *CA) Issued() int {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.issued
}

// Log is what Pebble has logged so far.
func (ca *CA) Log() string {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return strings.Join(ca.log, "\n")
}

// Stop kills Pebble and waits for it to exit; its ports then refuse
// connections.
func (ca *CA) Stop() {
	select {
	case <-ca.pebbleDone:
		return
	default:
	}
	_ = ca.pebble.Process.Kill()
	select {
	case <-ca.pebbleDone:
	case <-time.After(5 * time.Second):
		ca.t.Errorf("pebble (pid %d) still running 5s after SIGKILL", ca.pebble.Process.Pid)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freeUDPAndTCPPort is a port free on 127.0.0.1 for both: the DNS server
// binds both.
func freeUDPAndTCPPort(t testing.TB) int {
	t.Helper()
	for range 20 {
		port := freePort(t)
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP on 127.0.0.1")
	return 0
}

func waitDial(addr string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
