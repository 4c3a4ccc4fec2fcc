package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/valyala/fasthttp"

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
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	if err := r.apply(); err != nil {
		r.failed.Add(1)
		var ue usageError
		if errors.As(err, &ue) {
			err = ue.error
		}
		for _, e := range field.Leaves(err) {
			r.log.Error("configuration not reloaded; the previous one stays in use", "err", e)
			errs = append(errs, fmt.Errorf("configuration not reloaded: %w", e))
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
	return errors.Join(errs...)
}

// handle is the admin listener's POST /reload: run, answering 200, or
// 500 with what failed.
func (r *reloader) handle(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Error("POST /reload\n", fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "POST")
		return
	}
	r.log.Info("POST /reload: reloading the configuration and certificates, reopening the access log")
	if err := r.run(); err != nil {
		ctx.Error(err.Error()+"\n", fasthttp.StatusInternalServerError)
		return
	}
	ctx.WriteString("reloaded\n")
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
			r.log.Warn("setting changed; it needs a restart or --handover, and keeps its running value",
				"setting", rw.name, "running", was, "configured", is, "source", strings.Trim(next.from(rw.name), " ()"))
		}
	}
	if !slices.Equal(r.s.sites.certs, next.sites.certs) || !slices.Equal(r.s.sites.acmeHosts, next.sites.acmeHosts) {
		r.log.Warn("a site's certificate or ACME names changed; they need a restart or --handover, and the running ones stay",
			"source", next.sites.src)
	}
	c.Sites.Proxy.Logger = r.log
	c.Sites.Proxy.Tunnels = r.tunnels
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
// configuration, as nginx -s reload does. It validates the settings
// first, as check does (a bad value exits 2 and the server is not asked),
// then asks the server through its admin listener (POST /reload), and
// prints what the server says: what failed, or that it reloaded.
func newReload(stdout io.Writer) *cobra.Command {
	s := &settings{}
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the running server reload its configuration, certificates and access log (as SIGHUP), through --admin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := prepare(cmd.Flags(), s, false); err != nil {
				return err
			}
			admin := valueOf[string](s, "admin")
			if admin == "" {
				return fmt.Errorf("--admin is empty%s: reload asks the server through its admin listener; send SIGHUP instead (kill -HUP PID, systemctl reload)", s.from("admin"))
			}
			host, port, err := net.SplitHostPort(admin)
			if err != nil {
				return fmt.Errorf("--admin=%s%s: %w", admin, s.from("admin"), err)
			}
			if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
				host = "127.0.0.1" // a listener on every address has loopback too
			}
			var req fasthttp.Request
			var resp fasthttp.Response
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetRequestURI("http://" + net.JoinHostPort(host, port) + "/reload")
			if err := fasthttp.DoTimeout(&req, &resp, time.Minute); err != nil {
				return fmt.Errorf("no server answered on --admin=%s%s: %w", admin, s.from("admin"), err)
			}
			fmt.Fprint(stdout, string(resp.Body()))
			if resp.StatusCode() != fasthttp.StatusOK {
				return errReloadFailed
			}
			return nil
		},
	}
	s.register(cmd.Flags())
	cmd.SetFlagErrorFunc(flagError)
	return cmd
}

// errReloadFailed: the server said what failed; fastserve reload exits 1.
var errReloadFailed = errors.New("the server did not reload all of it (above)")
