package server

import "time"

// SetACMERenewCheck sets how often a's certificates are checked for
// renewal, so that a test sees a renewal in seconds.
func SetACMERenewCheck(a *ACME, d time.Duration) { a.renewCheck = d }
