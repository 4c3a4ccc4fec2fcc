package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/fastserve/fastserve/accesslog"
	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/proxy"
	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/sites"
)

// A reloader applies the configuration anew, at SIGHUP: it reads the
// settings again (the config file and the environment; the flags stay as
// given at start), validates them as check does, and puts the new sites
// in use without closing a connection; it reloads the certificates and
// reopens the access log too. A configuration that fails validation
// changes nothing (of the sites). A setting a running server cannot change (not live in
// table: addresses, socket options, TLS, limits) is logged as needing a
// restart or --handover, and keeps its running value.
type reloader struct {
	s         *settings // as loaded at start: what runs
	router    *sites.Router
	tunnels   *proxy.Tunnels // every proxy's, across reloads
	srv       *server.Server
	accessLog *accesslog.File
	log       *slog.Logger
	drain     time.Duration // how long the replaced sites may finish their requests
	streams   bool          // the server streams request bodies, as a proxy needs

	mu         sync.Mutex // one reload at a time (SIGHUP, POST /reload)
	kept       []string   // the last reload's settings not applied, under mu
	ok, failed atomic.Uint64
	lastOK     atomic.Int64 // Unix time of the last configuration put in use, the first included
}

// run reloads, logging what it did and why not. The certificates, ticket
// keys and access log are reloaded whatever the configuration's fate, each
// on its own, as before sites: a typo in the config file must not keep a
// renewed certificate out.
//
// It returns what failed, each part on a line of its own: for fastserve
// reload, which asks through the admin listener's POST /reload.
func (r *reloader) run() error {
	_, err := r.runKept()
	return err
}

// runKept is run, and says which changed settings kept their running
// values (each needs a restart or --handover), one line each.
func (r *reloader) runKept() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	r.kept = r.kept[:0]
	if err := r.apply(); err != nil {
		r.failed.Add(1)
		var ue usageError
		if errors.As(err, &ue) {
			err = ue.error
		}
		for _, e := range field.Leaves(err) {
			r.log.Error("configuration not reloaded; the previous one stays in use", "err", e)
			errs = append(errs, notReloaded{e})
		}
	}
	if err := r.srv.Reload(); err != nil { // logs what happened
		errs = append(errs, err)
	}
	if r.accessLog != nil {
		if err := r.accessLog.Reopen(); err != nil {
			r.log.Error("access log not reopened; still writing to the old file", "err", err)
			errs = append(errs, fmt.Errorf("access log not reopened: %w", err))
		}
	}
	return slices.Clone(r.kept), errors.Join(errs...)
}

// notReloaded is a reason the configuration was not put in use.
type notReloaded struct{ error }

func (e notReloaded) Error() string { return "configuration not reloaded: " + e.error.Error() }
func (e notReloaded) Unwrap() error { return e.error }

// handle is the admin listener's POST /reload: run, answering 200; 422
// if the configuration was not put in use (the rest may have been
// reloaded), 500 if only another part failed, each failure on a line.
// A config query argument is the file fastserve reload was given: a file
// other than the server's is refused with 409 and nothing is reloaded.
func (r *reloader) handle(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Error("POST /reload\n", fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "POST")
		return
	}
	if args := ctx.QueryArgs(); args.Has("config") {
		if msg := r.otherConfig(string(args.Peek("config"))); msg != "" {
			ctx.Error(msg+"\n", fasthttp.StatusConflict)
			return
		}
	}
	r.log.Info("POST /reload: reloading the configuration and certificates, reopening the access log")
	kept, err := r.runKept()
	if err != nil {
		status := fasthttp.StatusInternalServerError
		if _, ok := errors.AsType[notReloaded](err); ok {
			status = fasthttp.StatusUnprocessableEntity
		}
		ctx.Error(err.Error()+"\n", status)
		return
	}
	ctx.WriteString("reloaded\n")
	for _, k := range kept {
		ctx.WriteString(k + "\n")
	}
}

// otherConfig says why path, the config file fastserve reload was given
// (absolute), is not the file this server reads; "" if it is.
func (r *reloader) otherConfig(path string) string {
	const why = "a reload re-reads the server's own file, with the flags and environment it was started with"
	own := r.s.configFile
	if own == "" {
		return fmt.Sprintf("this server was started without a config file: %s; to serve %s, restart the server with it, or use --handover", why, path)
	}
	a, errA := os.Stat(own)
	b, errB := os.Stat(path)
	if errA == nil && errB == nil && os.SameFile(a, b) {
		return ""
	}
	if abs, err := filepath.Abs(own); err == nil && abs == filepath.Clean(path) {
		return "" // the same path, whatever is (or is not) there now
	}
	return fmt.Sprintf("this server reads config file %s, not %s: %s; give its path, or leave --config out (to serve another file, restart the server with it, or use --handover)", own, path, why)
}

// apply reads and validates the settings, and puts their sites in use.
func (r *reloader) apply() error {
	next := &settings{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	next.register(fs)
	for name, src := range r.s.source {
		if strings.HasPrefix(src, "flag --") {
			if err := copyFlag(fs, r.s.flags.Lookup(name)); err != nil {
				return err
			}
		}
	}
	next.configFile = r.s.configFile
	c, err := prepare(fs, next, true)
	if err != nil {
		return err
	}
	if !r.streams && next.on(row("proxy")) {
		return errors.New("the configuration sends requests to upstreams, and this server, started without any, does not read request bodies for them: restart it, or use --handover, to apply it")
	}
	for _, rw := range table {
		if rw.live {
			continue
		}
		was, is := r.s.flags.Lookup(rw.name).Value.String(), fs.Lookup(rw.name).Value.String()
		if was != is {
			src := strings.Trim(next.from(rw.name), " ()")
			r.log.Warn("setting changed; it needs a restart or --handover, and keeps its running value",
				"setting", rw.name, "running", was, "configured", is, "source", src)
			r.kept = append(r.kept, fmt.Sprintf("not applied: --%s=%s (%s) needs a restart or --handover; it keeps its running value %s", rw.name, is, src, was))
		}
	}
	if !slices.Equal(r.s.sites.certs, next.sites.certs) || !slices.Equal(r.s.sites.acmeHosts, next.sites.acmeHosts) {
		r.log.Warn("a site's certificate or ACME names changed; they need a restart or --handover, and the running ones stay",
			"source", next.sites.src)
		r.kept = append(r.kept, "not applied: a site's certificate or ACME names changed ("+next.sites.src+"); they need a restart or --handover")
	}
	engineProxies(&c.Sites.Proxy, r.log, r.tunnels)
	if err := r.router.Reload(c.Sites, r.drain); err != nil {
		return err
	}
	r.ok.Add(1)
	r.lastOK.Store(time.Now().Unix())
	r.log.Info("configuration reloaded", "sites", len(c.Sites.Sites), "config", r.s.configFile)
	logSites(r.log, c.Sites)
	return nil
}

// copyFlag gives dst, a flag of a new set, the value of src, the same
// flag as the command line gave it.
func copyFlag(fs *pflag.FlagSet, src *pflag.Flag) error {
	sv, isSlice := src.Value.(pflag.SliceValue)
	if !isSlice {
		return fs.Set(src.Name, src.Value.String())
	}
	vals := sv.GetSlice()
	if err := fs.Set(src.Name, ""); err != nil { // given, as a flag: load names its source
		return fmt.Errorf("--%s: %w", src.Name, err)
	}
	return fs.Lookup(src.Name).Value.(pflag.SliceValue).Replace(vals)
}

// WritePrometheus writes the reloads' counts, and the time of the last
// configuration put in use (the start, until a reload succeeds).
func (r *reloader) WritePrometheus(w io.Writer) {
	metrics.WriteCounterUint64(w, `fastserve_config_reloads_total{result="ok"}`, r.ok.Load())
	metrics.WriteCounterUint64(w, `fastserve_config_reloads_total{result="failed"}`, r.failed.Load())
	metrics.WriteGaugeUint64(w, "fastserve_config_last_reload_success_timestamp_seconds", uint64(max(r.lastOK.Load(), 0)))
}

// logSites logs the sites of cfg, one line each.
func logSites(log *slog.Logger, cfg sites.Config) {
	for _, st := range cfg.Sites {
		log.Info("site", "hosts", st.Hosts, "root", st.Root, "proxy", st.Proxy, "routes", len(st.Routes))
	}
	if cfg.RefuseUnknown {
		log.Info("unknown hosts refused (421)")
	}
}

// newReload is fastserve reload: the running server reloads its
// configuration, as nginx -s reload does. It asks the server through its
// admin listener (POST /reload), which re-reads its own config file with
// the flags and environment it was started with, validates it as check
// does, and answers once it is in use; reload prints what failed (a
// configuration the server refused exits 2, as check's errors do). It
// reads the admin address from --admin, FASTSERVE_ADMIN, or the config
// file's admin: key; a --config other than the server's is refused by
// the server, and nothing is reloaded: it would be neither read nor
// checked.
func newReload(stdout io.Writer) *cobra.Command {
	var configFile, admin string
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the running server reload its own config file, certificates and access log (as SIGHUP), through --admin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfgSrc := "flag --config"
			if !cmd.Flags().Changed("config") {
				configFile, cfgSrc = os.Getenv(envName("config")), "environment "+envName("config")
			}
			addr, src, err := reloadAdmin(cmd.Flags().Changed("admin"), admin, configFile)
			if err != nil {
				return usageError{err}
			}
			if addr == "" {
				return usageError{fmt.Errorf("--admin is empty (%s): reload asks the server through its admin listener; send SIGHUP instead (kill -HUP PID, systemctl reload)", src)}
			}
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return usageError{fmt.Errorf("--admin=%s (%s): %w", addr, src, err)}
			}
			if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
				host = "127.0.0.1" // a listener on every address has loopback too
			}
			var req fasthttp.Request
			var resp fasthttp.Response
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetRequestURI("http://" + net.JoinHostPort(host, port) + "/reload")
			if configFile != "" {
				abs, err := filepath.Abs(configFile)
				if err != nil {
					return usageError{fmt.Errorf("--config=%s (%s): %w", configFile, cfgSrc, err)}
				}
				req.URI().QueryArgs().Set("config", abs)
			}
			if err := fasthttp.DoTimeout(&req, &resp, time.Minute); err != nil {
				return fmt.Errorf("no server answered on --admin=%s (%s): %w", addr, src, err)
			}
			var lines []error
			for _, l := range strings.Split(strings.TrimSuffix(string(resp.Body()), "\n"), "\n") {
				lines = append(lines, errors.New(l))
			}
			switch resp.StatusCode() {
			case fasthttp.StatusOK:
				fmt.Fprint(stdout, string(resp.Body()))
				return nil
			case fasthttp.StatusConflict:
				return usageError{fmt.Errorf("--config=%s (%s): %s", configFile, cfgSrc, strings.TrimSpace(string(resp.Body())))}
			case fasthttp.StatusUnprocessableEntity:
				return usageError{errors.Join(lines...)}
			}
			return errors.Join(lines...)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "the running server's YAML config file, to read its admin: key (another file is refused: the server re-reads its own)")
	cmd.Flags().StringVar(&admin, "admin", row("admin").def.(string), "host:port of the running server's admin listener")
	cmd.SetFlagErrorFunc(reloadFlagError)
	return cmd
}

// reloadFlagError explains that reload takes no setting but where to
// find the server: the server keeps the flags it was started with.
func reloadFlagError(cmd *cobra.Command, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: ")
	if !ok || !isSetting(strings.TrimPrefix(name, "--")) {
		return flagError(cmd, err)
	}
	return usageError{fmt.Errorf("%s: fastserve reload takes --config and --admin only: the server reloads its own config file with the flags and environment it was started with (a changed flag needs a restart, or --handover)", name)}
}

// reloadAdmin is the admin address fastserve reload asks, and where it
// came from: --admin if given, else FASTSERVE_ADMIN, else the config
// file's admin: key, else the default; serve's order.
func reloadAdmin(given bool, flag, configFile string) (addr, src string, err error) {
	if given {
		return flag, "flag --admin", nil
	}
	if v, ok := os.LookupEnv(envName("admin")); ok {
		return v, "environment " + envName("admin"), nil
	}
	def := row("admin").def.(string)
	if configFile == "" {
		return def, "default", nil
	}
	b, err := os.ReadFile(configFile)
	if err != nil {
		return "", "", fmt.Errorf("config file: %w", err)
	}
	doc, err := parseConfig(configFile, b)
	if err != nil {
		return "", "", err
	}
	if len(doc.Content) == 0 {
		return def, "default", nil
	}
	top, errs := resolveAliases(configFile, doc.Content[0])
	if len(errs) > 0 {
		return "", "", errors.Join(errs...)
	}
	for i := 0; top.Kind == yaml.MappingNode && i+1 < len(top.Content); i += 2 {
		if k, v := top.Content[i], top.Content[i+1]; k.Value == "admin" {
			if v.Kind != yaml.ScalarNode {
				return "", "", fmt.Errorf("config file %s:%d: \"admin\" must be a single value", configFile, k.Line)
			}
			return v.Value, fmt.Sprintf("config file %s:%d", configFile, k.Line), nil
		}
	}
	return def, "default", nil
}
