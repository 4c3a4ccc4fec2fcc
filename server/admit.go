package server

import (
	"crypto/tls"
	"net"
	"net/netip"
	"time"

	"github.com/fastserve/fastserve/proxyproto"
)

// admit applies the connection limits and OnConn to a new TCP connection
// and wraps it for TLS, or closes it and returns nil.
func (s *Server) admit(tc *net.TCPConn) *conn {
	s.stats.accepted.Add(1)
	if s.stats.open.Add(1) > int64(s.cfg.MaxConns) {
		s.stats.open.Add(-1)
		s.stats.reject(RejectMaxConns)
		resetConn(tc)
		return nil
	}
	var peer netip.Addr
	if s.cfg.ProxyProtocol || s.cfg.MaxConnsPerIP > 0 {
		peer = tc.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	}
	// A trusted balancer's connections are counted by the client address
	// its PROXY header gives, once it is read (conn.readProxyHeader).
	trusted := s.cfg.ProxyProtocol && s.proxyPolicy.Trusts(peer)
	var ip netip.Addr
	if s.cfg.MaxConnsPerIP > 0 && !trusted {
		var ok bool
		if ip, ok = s.countIP(peer); !ok {
			s.stats.open.Add(-1)
			s.stats.reject(RejectMaxConnsPerIP)
			s.logRefusal("connection refused", "reason", RejectMaxConnsPerIP.String(), "remote", peer.String())
			resetConn(tc)
			return nil
		}
	}
	c := &conn{tcp: tc, srv: s, ip: ip, start: time.Now()}
	if s.cfg.OnConn != nil {
		if err := s.cfg.OnConn(tc); err != nil {
			s.stats.reject(RejectOnConn)
			s.release(c)
			resetConn(tc)
			return nil
		}
	}
	if s.cfg.ProxyProtocol {
		c.proxy = proxyproto.NewConn(tc, trusted)
		c.Conn = tls.Server(c.proxy, s.tls.cfg)
	} else {
		c.Conn = tls.Server(tc, s.tls.cfg)
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return c
}

// countIP counts a connection from ip (IPv6 by its /64: a host gets one)
// against MaxConnsPerIP under the key it returns; false at the limit.
func (s *Server) countIP(ip netip.Addr) (netip.Addr, bool) {
	if p, err := ip.Prefix(64); err == nil && ip.Is6() {
		ip = p.Addr()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip] >= s.cfg.MaxConnsPerIP {
		return ip, false
	}
	s.perIP[ip]++
	return ip, true
}

// release undoes admit's counting for a connection that is closing.
func (s *Server) release(c *conn) {
	s.stats.open.Add(-1)
	s.stats.closedBytesIn.Add(c.bytesIn.Load())
	s.stats.closedBytesOut.Add(c.bytesOut.Load())
	s.mu.Lock()
	delete(s.conns, c)
	if c.ip.IsValid() {
		if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
			delete(s.perIP, c.ip)
		}
	}
	s.mu.Unlock()
}

// resetConn closes a connection that is over a limit at once, with a
// reset, so that it holds nothing in the kernel either.
func resetConn(tc *net.TCPConn) {
	_ = tc.SetLinger(0)
	_ = tc.Close()
}
