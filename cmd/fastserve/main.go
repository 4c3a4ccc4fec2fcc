// Command fastserve is a high-throughput HTTPS web server for many
// long-lived keep-alive connections. Run with no arguments, it serves a
// built-in page on :8443 with a self-signed development certificate; see
// 'fastserve serve --help' for everything else.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/accesslog"
	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/internal/selfsigned"
	"github.com/fastserve/fastserve/proxy"
	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/sites"
)

// usageError is a mistake in what the command was given: exit code 2.
type usageError struct{ error }

// flagError makes a command-line parse error a usageError, in the same
// words as the other invalid values.
func flagError(_ *cobra.Command, err error) error {
	var ive *pflag.InvalidValueError
	if errors.As(err, &ive) {
		f := ive.GetFlag()
		return usageError{badValue(f, ive.GetValue(), "flag --"+f.Name, err)}
	}
	return usageError{fmt.Errorf("%w (see 'fastserve serve --help')", err)}
}

func main() {
	err := newRoot(os.Stdout, os.Stderr).Execute()
	if err == nil {
		return
	}
	code := 1
	var ue usageError
	if errors.As(err, &ue) {
		code, err = 2, ue.error
	}
	for _, e := range field.Leaves(err) {
		fmt.Fprintln(os.Stderr, "fastserve:", e)
	}
	os.Exit(code)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	serve := newServe(stderr)
	root := &cobra.Command{
		Use:   "fastserve",
		Short: "A high-throughput HTTPS server for long-lived keep-alive connections",
		Long: "fastserve serves HTTPS with fasthttp on tuned listeners: each connection's TCP keep-alive,\n" +
			"user timeout and buffers are set before TLS. With no command it runs 'serve' with its defaults.",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          serve.RunE,
		Version:       versionString(), // --version prints what 'fastserve version' does
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.Flags().AddFlagSet(serve.Flags())
	root.AddCommand(serve, newCheck(stdout), newReload(stdout), newCert(stderr), newVersion(stdout), newBench(stdout))
	root.SetFlagErrorFunc(flagError)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root
}

func newServe(stderr io.Writer) *cobra.Command {
	s := &settings{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve HTTPS (the default command)",
		Long: "Serve HTTPS. Every setting can also come from a FASTSERVE_* environment variable\n" +
			"(FASTSERVE_KEEPALIVE_IDLE for --keepalive-idle) or a YAML --config file keyed by flag name;\n" +
			"flags win over the environment, which wins over the file.\n\n" +
			"Signals: SIGTERM and SIGINT drain gracefully (up to --drain-timeout) and exit 0; a second one\n" +
			"closes every connection at once, to the clients and to the proxy's upstreams. SIGHUP re-reads\n" +
			"the config file and applies its sites, files and proxy settings without closing a connection\n" +
			"(other changed settings are logged as needing a restart), reloads the certificates and\n" +
			"reopens the access log.\n\n" +
			"Zero-downtime restart: run the new binary or configuration with the same --handover path;\n" +
			"it takes the listening sockets from the running process, which then drains and exits 0.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, s, stderr)
		},
	}
	s.register(cmd.Flags())
	cmd.SetFlagErrorFunc(flagError)
	return cmd
}

// prepare loads the settings and checks everything that can be checked
// without binding: a usageError lists every problem, one per line. For a
// reload, the certificate and ticket key files are left out: the server
// reloads their contents each on its own, and their paths need a restart.
func prepare(fs *pflag.FlagSet, s *settings, reload bool) (configs, error) {
	loadErr := s.load(fs, os.LookupEnv) // a bad value leaves its default: go on, to report every problem
	c, err := s.build()
	err = errors.Join(loadErr, err)
	v := c.Server
	if reload {
		v.TLS.Certificates, v.TLS.SessionTicketKeyFiles = nil, nil
	}
	if verr := v.Validate(); verr != nil {
		err = errors.Join(err, s.explain(verr, "Server"))
	}
	if serr := c.Sites.Validate(); serr != nil { // the proxies' too: each site's, the default one's
		err = errors.Join(err, s.explainSites(serr))
	}
	if err != nil {
		return configs{}, usageError{err}
	}
	return c, nil
}

func runServe(cmd *cobra.Command, s *settings, stderr io.Writer) error {
	c, err := prepare(cmd.Flags(), s, false)
	if err != nil {
		return err
	}
	cfg := c.Server
	logger := newLogger(stderr, valueOf[string](s, "log-format"), valueOf[string](s, "log-level"))
	cfg.Logger = logger

	var accessLog *accesslog.File
	switch path := valueOf[string](s, "access-log"); path {
	case "":
	case "-":
		cfg.AccessLog = os.Stdout
	default:
		if accessLog, err = accesslog.OpenFile(path); err != nil {
			return usageError{fmt.Errorf("--access-log=%s%s: %w", path, s.from("access-log"), err)}
		}
		defer accessLog.Close()
		cfg.AccessLog = accessLog
	}

	// Every proxy, those of later reloads too, records its tunnels here:
	// a drain out of time ends them all cleanly (WebSocket: 1001).
	tunnels := &proxy.Tunnels{}
	engineProxies(&c.Sites.Proxy, logger, tunnels)
	cfg.BeforeCut = func() { tunnels.GoAway(time.Second) }
	router, err := sites.New(c.Sites)
	if err != nil {
		return err // prepare validated it: what is left is a root that could not be opened
	}
	defer router.Close()
	abort := router.Abort // a second signal: the drain waits for the handlers, which wait for their upstreams
	if router.Proxies() {
		cfg.StreamRequestBody = true // the proxy reads bodies itself: to memory or a file, or streamed upstream
	} else {
		cfg.DiscardBodies = true // files and the built-in page take no body
	}
	reload := &reloader{s: s, router: router, tunnels: tunnels, log: logger, drain: cfg.DrainTimeout, streams: cfg.StreamRequestBody}
	reload.lastOK.Store(time.Now().Unix())
	cfg.Metrics = func(w io.Writer) {
		router.WritePrometheus(w)
		reload.WritePrometheus(w)
	}
	cfg.Admin = map[string]fasthttp.RequestHandler{"/reload": reload.handle, "/debug/upstreams": upstreamConns(router)}
	for _, r := range c.Sites.Default.Routes {
		logger.Info("proxying", "path", r.Path, "upstreams", r.Proxy)
	}
	if up := c.Sites.Default.Proxy; len(up) > 0 {
		logger.Info("proxying", "path", "/", "upstreams", up)
	}
	logSites(logger, c.Sites)

	srv, err := server.New(cfg, router.Handle)
	if err != nil {
		return s.explain(err, "Server")
	}
	reload.srv, reload.accessLog = srv, accessLog
	if len(cfg.TLS.Certificates) == 0 && len(cfg.ACME.Domains) == 0 {
		logger.Warn("development mode: try curl -k https://localhost:" + portOf(srv.Addrs()[0].String()) + "/")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			logger.Info("SIGHUP: reloading the configuration and certificates, reopening the access log")
			_ = reload.run() // logs what failed
		}
	}()

	// A second SIGINT or SIGTERM during the drain closes every connection
	// at once, the clients' and the upstreams' (the drain waits up to
	// --drain-idle-timeout for idle ones, and for the requests in flight).
	go func() {
		<-ctx.Done()
		again := make(chan os.Signal, 1)
		signal.Notify(again, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(again)
		select {
		case sig := <-again:
			logger.Warn("second signal: closing every connection now", "signal", sig.String())
			now, cancel := context.WithCancel(context.Background())
			cancel()
			abort()
			_ = srv.Shutdown(now)
		case <-srv.Drained():
		}
	}()

	start := time.Now()
	err = srv.Serve(ctx)
	logger.Info("stopped", "uptime", time.Since(start).Round(time.Millisecond), "err", err)
	return err
}

func portOf(addr string) string {
	return addr[strings.LastIndex(addr, ":")+1:]
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newCheck(stdout io.Writer) *cobra.Command {
	s := &settings{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the settings (flags, environment, --config file), print the effective ones, and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := prepare(cmd.Flags(), s, false)
			if err != nil {
				return err
			}
			notes := append(cfg.Server.Notes(), certNotes(cfg.Server.TLS.Certificates, time.Now())...)
			for _, n := range notes {
				fmt.Fprintln(stdout, "# note: "+n)
			}
			derived := s.derived(cfg)
			for i, r := range s.sites.def.Routes {
				fmt.Fprintf(stdout, "route: %s -> %s%s  # config file %s:%d\n", r.Path, strings.Join(r.Proxy, ","), routeOptions(r), s.configFile, s.sites.line(fmt.Sprintf("routes[%d]", i)))
			}
			for i, st := range s.sites.list {
				path := fmt.Sprintf("sites[%d]", i)
				fmt.Fprintf(stdout, "%s: %s  # config file %s:%d\n", path, describe(st), s.configFile, s.sites.line(path))
			}
			cmd.Flags().VisitAll(func(f *pflag.Flag) {
				if f.Name == "config" || f.Name == "help" {
					return
				}
				src := s.source[f.Name]
				if src == "" {
					src = "default"
				}
				v := f.Value.String()
				if d, ok := derived[f.Name]; ok {
					if v == "" {
						v = `""`
					}
					v, src = d, src+", derived from "+v
				}
				fmt.Fprintf(stdout, "%s: %s  # %s\n", f.Name, v, src)
			})
			fmt.Fprintln(stdout, "# settings are valid")
			return nil
		},
	}
	s.register(cmd.Flags())
	cmd.SetFlagErrorFunc(flagError)
	return cmd
}

func newCert(stderr io.Writer) *cobra.Command {
	var (
		hosts             []string
		certFile, keyFile string
		validFor          time.Duration
		force             bool
	)
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Write a self-signed ECDSA P-256 certificate and key, for local use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if validFor <= 0 {
				return usageError{fmt.Errorf("--valid-for=%v: invalid value: want a positive duration such as 8760h", validFor)}
			}
			certPEM, keyPEM, err := selfsigned.PEM(validFor, hosts...)
			if err != nil {
				return usageError{fmt.Errorf("--host: %w", err)}
			}
			for _, f := range []struct {
				path string
				data []byte
				mode os.FileMode
			}{{keyFile, keyPEM, 0o600}, {certFile, certPEM, 0o644}} {
				if err := writeNew(f.path, f.data, f.mode, force); err != nil {
					return err
				}
			}
			fmt.Fprintf(stderr, "wrote %s and %s for %s, valid for %v\n", certFile, keyFile, strings.Join(hosts, ", "), validFor)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&hosts, "host", selfsigned.DefaultHosts, "names and addresses the certificate covers")
	cmd.Flags().StringVar(&certFile, "cert-file", "cert.pem", "where to write the certificate")
	cmd.Flags().StringVar(&keyFile, "key-file", "key.pem", "where to write the private key (mode 0600)")
	cmd.Flags().DurationVar(&validFor, "valid-for", 365*24*time.Hour, "validity period")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	cmd.SetFlagErrorFunc(flagError)
	return cmd
}

// writeNew writes data to path with mode. Without force, an existing path
// (a symbolic link included) is an error. With force, the file is written
// beside path and renamed over it: a symbolic link at path is replaced,
// not followed, and the file gets mode whatever the old one had.
func writeNew(path string, data []byte, mode os.FileMode, force bool) error {
	if !force {
		out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return fmt.Errorf("%w (use --force to overwrite)", err)
		}
		if _, err := out.Write(data); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone once renamed
	err = tmp.Chmod(mode)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newVersion(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(stdout, versionString())
		},
	}
}

func versionString() string {
	v, fasthttpV := "(devel)", "?"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/valyala/fasthttp" {
				fasthttpV = d.Version
			}
		}
	}
	return fmt.Sprintf("fastserve %s (fasthttp %s, %s %s/%s)", v, fasthttpV, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// upstreamConns serves the connections open to upstreams as JSON, with
// the socket options read back, beside the engine's /debug/conns.
func upstreamConns(router *sites.Router) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		conns := router.UpstreamConns()
		if conns == nil {
			conns = []proxy.UpstreamConn{}
		}
		b, _ := json.MarshalIndent(struct {
			Conns []proxy.UpstreamConn `json:"conns"`
		}{conns}, "", "  ")
		ctx.SetContentType("application/json")
		ctx.Write(append(b, '\n'))
	}
}

// engineProxies gives the proxies' shared settings what the running
// server has, at start and at each reload alike: its logger, the Tunnels
// every proxy records its tunnels in, and KeepsHijacked (the engine keeps
// hijacked connections: a tunnel holds no request buffers).
func engineProxies(pc *proxy.Config, log *slog.Logger, tunnels *proxy.Tunnels) {
	pc.Logger, pc.Tunnels, pc.KeepsHijacked = log, tunnels, true
}
