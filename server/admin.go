package server

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"

	"github.com/fastserve/fastserve/tune"
)

// ConnInfo describes one open client connection, for /debug/conns.
type ConnInfo struct {
	Remote      string  `json:"remote"`         // the client: from the PROXY header, when there is one
	Peer        string  `json:"peer,omitempty"` // the socket's peer (the load balancer), when a PROXY header gave Remote
	Local       string  `json:"local"`
	AgeSeconds  float64 `json:"age_seconds"`
	Requests    uint64  `json:"requests"`
	Upgraded    bool    `json:"upgraded,omitempty"` // a tunnel (WebSocket) since its last request
	BytesIn     uint64  `json:"bytes_in"`
	BytesOut    uint64  `json:"bytes_out"`
	Idle        bool    `json:"idle"`
	IdleSeconds float64 `json:"idle_seconds,omitempty"`
	Parked      bool    `json:"parked,omitempty"`      // waiting with no goroutine (Config.IdleParkAfter)
	TLSVersion  string  `json:"tls_version,omitempty"` // empty until the handshake is done
	ALPN        string  `json:"alpn,omitempty"`
	ServerName  string  `json:"server_name,omitempty"`

	// Socket is what the kernel holds for the connection (tune.Inspect);
	// SocketError says why it is missing.
	Socket      *SocketInfo `json:"socket,omitempty"`
	SocketError string      `json:"socket_error,omitempty"`
}

// SocketInfo is what the kernel holds for a connection, as /debug/conns
// shows it; dead_peer_after_seconds is absent when nothing bounds it.
type SocketInfo = tune.SocketReport

// Conns describes up to limit open connections (all if limit <= 0), the
// oldest first, with their sockets read back from the kernel.
func (s *Server) Conns(limit int) []ConnInfo {
	conns := s.openConns()
	slices.SortFunc(conns, func(a, b *conn) int { return a.start.Compare(b.start) })
	if limit > 0 && len(conns) > limit {
		conns = conns[:limit]
	}
	now := time.Now()
	infos := make([]ConnInfo, 0, len(conns))
	for _, c := range conns {
		ci := ConnInfo{
			Remote:     c.tcp.RemoteAddr().String(),
			Local:      c.tcp.LocalAddr().String(),
			AgeSeconds: now.Sub(c.start).Seconds(),
			Requests:   c.requests.Load(),
			Upgraded:   c.upgraded.Load(), BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		}
		ph := c.phase()
		ci.Parked = ph == phaseParking
		if c.proxy != nil {
			if client := c.proxy.Client(); client != nil {
				ci.Remote, ci.Peer = client.String(), ci.Remote
			}
		}
		if since := c.idleSince.Load(); since != 0 {
			ci.Idle = true
			ci.IdleSeconds = now.Sub(time.Unix(0, since)).Seconds()
		}
		if ph == phaseServing || ph == phaseParking {
			cs := c.Conn.ConnectionState()
			ci.TLSVersion, ci.ALPN, ci.ServerName = tls.VersionName(cs.Version), cs.NegotiatedProtocol, cs.ServerName
		}
		if st, err := tune.Inspect(c.tcp); err != nil {
			ci.SocketError = err.Error()
		} else {
			ci.Socket = st.Report()
		}
		infos = append(infos, ci)
	}
	return infos
}

// AdminHandler serves the operator's endpoints, for a listener that only
// operators reach:
//
//	/metrics      WritePrometheus
//	/healthz      200 while the process serves
//	/readyz       200, or 503 from the moment a drain starts, so that a
//	              balancer stops sending new connections
//	/debug/conns  Conns as JSON; ?limit=N (default 1000, 0 for all)
//	/debug/pprof/ Go's profiles (net/http/pprof), such as
//	              /debug/pprof/profile?seconds=10 for the CPU, with
//	              Config.AdminProfiles only
func (s *Server) AdminHandler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if bytes.HasPrefix(ctx.Path(), []byte("/debug/pprof/")) && s.cfg.AdminProfiles {
			pprofhandler.PprofHandler(ctx)
			return
		}
		switch string(ctx.Path()) {
		case "/metrics":
			s.MetricsHandler(ctx)
		case "/healthz":
			ctx.WriteString("ok\n")
		case "/readyz":
			if s.Draining() {
				ctx.Error("draining\n", fasthttp.StatusServiceUnavailable)
				return
			}
			ctx.WriteString("ready\n")
		case "/debug/conns":
			limit, err := ctx.QueryArgs().GetUint("limit")
			if errors.Is(err, fasthttp.ErrNoArgValue) {
				limit, err = 1000, nil
			}
			if err != nil {
				ctx.Error("limit must be a whole number, 0 for all\n", fasthttp.StatusBadRequest)
				return
			}
			ctx.SetContentType("application/json")
			b, _ := json.MarshalIndent(struct {
				Open  int64      `json:"open"`
				Conns []ConnInfo `json:"conns"`
			}{s.stats.open.Load(), s.Conns(limit)}, "", "  ")
			ctx.Write(append(b, '\n'))
		default:
			if h := s.cfg.Admin[string(ctx.Path())]; h != nil {
				h(ctx)
				return
			}
			ctx.Error("not found: try /metrics, /healthz, /readyz or /debug/conns\n", fasthttp.StatusNotFound)
		}
	}
}
