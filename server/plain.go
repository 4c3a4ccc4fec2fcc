package server

import (
	"fmt"
	"net"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/tune"
)

// plainServer is a plain-HTTP listener run beside the HTTPS ones, with the
// same lifecycle: the admin endpoints and the redirect to HTTPS.
type plainServer struct {
	name string
	fs   *fasthttp.Server
	ln   *onceCloser
}

// onceCloser is a listener that closing again leaves alone: Shutdown
// closes it in case Serve has not handed it to fasthttp yet, and fasthttp
// closes it too.
type onceCloser struct {
	net.Listener
	closed atomic.Bool
}

func (l *onceCloser) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	return l.Listener.Close()
}

// ListenerAddr returns the address of the "admin" or "redirect" listener,
// or nil if it is not configured.
func (s *Server) ListenerAddr(name string) net.Addr {
	for _, p := range s.plain {
		if p.name == name {
			return p.ln.Addr()
		}
	}
	return nil
}

// newPlain binds the listener of the field AdminAddr or RedirectAddr, or
// takes it from the process this one replaces. It shares its address
// (SO_REUSEPORT) only as a redirect listener with SharePort.
func (s *Server) newPlain(name, field, addr string, h fasthttp.RequestHandler) (*plainServer, error) {
	var ln net.Listener
	var err error
	o := s.cfg.Tune
	o.ReusePort = o.ReusePort && s.cfg.SharePort && name == "redirect"
	if fs := s.handover.Take(name, addr); len(fs) > 0 {
		ln, err = tune.FileListener(fs[0], o)
		for _, f := range fs {
			f.Close()
		}
	} else {
		ln, err = tune.Listen("tcp", addr, o)
	}
	if err != nil {
		return nil, &ConfigError{Pkg: "server", Field: field, Value: addr, Err: fmt.Errorf("%s listener: %w", name, err)}
	}
	s.handover.Add(name, addr, ln.(*tune.Listener))
	fs := s.newFastHTTP(nil)
	fs.Handler = h
	return &plainServer{name: name, ln: &onceCloser{Listener: ln}, fs: fs}, nil
}

// redirectHandler answers every request with a permanent redirect to the
// same host and URI over HTTPS, on httpsPort: 301 for GET and HEAD, 308
// for other methods, whose clients must not turn them into a GET.
func redirectHandler(httpsPort int) fasthttp.RequestHandler {
	suffix := ""
	if httpsPort != 443 {
		suffix = ":" + strconv.Itoa(httpsPort)
	}
	return func(ctx *fasthttp.RequestCtx) {
		host := string(ctx.Host())
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
			if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
				host = "[" + h + "]"
			}
		}
		if host == "" {
			ctx.Error("Bad Request: no Host\n", fasthttp.StatusBadRequest)
			return
		}
		ctx.Response.Header.Set("Location", "https://"+host+suffix+string(ctx.RequestURI()))
		ctx.Response.Header.Set("Connection", "close")
		if ctx.IsGet() || ctx.IsHead() {
			ctx.SetStatusCode(fasthttp.StatusMovedPermanently)
		} else {
			// 301 lets a client turn a POST into a GET; 308 keeps the
			// method and body.
			ctx.SetStatusCode(fasthttp.StatusPermanentRedirect)
		}
	}
}
