package tune

import (
	"net"
	"strings"
)

// Port splits a listen address, host:port, and reads its port: a number
// from 0 to 65535, or a service name.
func Port(addr string) (port int, ok bool) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false
	}
	port, err = net.LookupPort("tcp", p)
	return port, err == nil
}

// SameAddr reports whether two listen addresses would take the same
// connections: one port (not 0, which picks a free one), and one host, or
// either host every address.
func SameAddr(a, b string) bool {
	pa, _ := Port(a)
	pb, _ := Port(b)
	if pa == 0 || pa != pb {
		return false
	}
	ha, _, _ := net.SplitHostPort(a)
	hb, _, _ := net.SplitHostPort(b)
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return any(ha) || any(hb) || strings.EqualFold(ha, hb)
}
