package server

import "testing"

// TestReasonNames: every reason and handshake failure has a name of its
// own, as /metrics and the logs need.
func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := range numReasons {
		n := r.String()
		if n == "" || seen[n] {
			t.Errorf("reason %d: name %q empty or taken", r, n)
		}
		seen[n] = true
	}
	seen = map[string]bool{}
	for f := range numFailures {
		n := f.String()
		if n == "" || seen[n] {
			t.Errorf("handshake failure %d: name %q empty or taken", f, n)
		}
		seen[n] = true
	}
}
