package compress

import "bytes"

// choose is the coding to send for the Accept-Encoding field lines of a
// request (RFC 9110 section 12.5.3): of br, zstd and gzip (x-gzip too),
// the one with the highest weight above zero, br before zstd before gzip
// at equal weights. A coding not listed has the weight of "*", if listed;
// q=0 refuses a coding. No field, an empty one, or only identity gives
// identity. An element that does not parse is ignored.
func choose(lines [][]byte) coding {
	var q [codings]int // thousandths; -1: not listed
	for i := range q {
		q[i] = -1
	}
	star := -1
	for _, line := range lines {
		for len(line) > 0 {
			var elem []byte
			elem, line, _ = bytes.Cut(line, []byte{','})
			name, w, ok := element(elem)
			if !ok {
				continue
			}
			c := codingOf(name)
			switch {
			case c != identity:
				if q[c] < 0 || w < q[c] {
					q[c] = w // listed twice: the lower weight, so that a refusal holds
				}
			case len(name) == 1 && name[0] == '*':
				if star < 0 || w < star {
					star = w
				}
			}
		}
	}
	best, bestQ := identity, 0
	for c := brotli; c < codings; c++ {
		w := q[c]
		if w < 0 {
			w = star
		}
		if w > bestQ {
			best, bestQ = c, w
		}
	}
	return best
}

// codingOf is the coding a token names, or identity for any other.
func codingOf(name []byte) coding {
	switch {
	case bytes.EqualFold(name, []byte("br")):
		return brotli
	case bytes.EqualFold(name, []byte("zstd")):
		return zstandard
	case bytes.EqualFold(name, []byte("gzip")), bytes.EqualFold(name, []byte("x-gzip")):
		return gzipped
	}
	return identity
}

// element parses one element of Accept-Encoding, "gzip;q=0.5": the
// coding's name and its weight in thousandths (1000 if none is given);
// false for an empty element, or a weight that is not a qvalue.
func element(elem []byte) (name []byte, weight int, ok bool) {
	name, params, _ := bytes.Cut(elem, []byte{';'})
	if name = bytes.TrimSpace(name); len(name) == 0 {
		return nil, 0, false
	}
	weight = 1000
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte{';'})
		k, v, _ := bytes.Cut(bytes.TrimSpace(p), []byte{'='})
		if !bytes.EqualFold(bytes.TrimSpace(k), []byte("q")) {
			continue // an accept-ext: no meaning here
		}
		if weight, ok = qvalue(bytes.TrimSpace(v)); !ok {
			return nil, 0, false
		}
	}
	return name, weight, true
}

// qvalue parses a weight, "0" to "1" with up to three decimals (RFC 9110
// section 12.4.2), in thousandths.
func qvalue(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 5 || v[0] != '0' && v[0] != '1' {
		return 0, false
	}
	n := int(v[0]-'0') * 1000
	if len(v) == 1 {
		return n, true
	}
	if v[1] != '.' {
		return 0, false
	}
	scale := 100
	for _, d := range v[2:] {
		if d < '0' || d > '9' || n == 1000 && d != '0' {
			return 0, false
		}
		n += int(d-'0') * scale
		scale /= 10
	}
	return n, true
}
