package proxy

// LooseRouteForTest reads path loosely, as Handler does.
func LooseRouteForTest(p *Proxy, path []byte) { p.looseRoute(path) }
