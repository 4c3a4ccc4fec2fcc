package httpsyntax

import (
	"bytes"
	"testing"
)

// scanAll scans in as it would arrive in reads of seg bytes.
func scanAll(in []byte, seg int) uint64 {
	var h HeadScan
	h.Start(1)
	for len(in) > 0 && h.on {
		n := min(seg, len(in))
		if bad := h.Scan(in[:n]); bad != 0 {
			return bad
		}
		in = in[n:]
	}
	return 0
}

// FuzzHeadScan: however the bytes are split into reads, the scan of a
// pipeline finds the same head with a bare LF, or none; and it never
// finds one where every LF follows a CR.
func FuzzHeadScan(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\na\nb\ncGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	} {
		f.Add([]byte(seed), uint8(1))
		f.Add([]byte(seed), uint8(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, seg uint8) {
		whole := scanAll(in, len(in)+1)
		split := scanAll(in, int(seg%32)+1)
		if whole != split {
			t.Fatalf("in one read: head %d; in reads of %d bytes: head %d: %q", whole, seg%32+1, split, in)
		}
		if whole != 0 && !hasBareLF(in) {
			t.Fatalf("head %d refused, but every LF follows a CR: %q", whole, in)
		}
	})
}

func hasBareLF(b []byte) bool {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}
