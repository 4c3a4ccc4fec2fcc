// Package ratelog bounds how many lines a source of log lines writes per
// second: a flood of bad requests, or of failing upstream requests, must
// not flood the log or the disk. What is dropped is counted and said in
// the next line that gets through.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Burst is how many lines a Limiter lets through each second.
const Burst = 10

// A Limiter lets through at most Burst lines a second and counts the
// others. The zero value is ready; it is safe for concurrent use.
type Limiter struct {
	mu         sync.Mutex
	second     int64
	n          int
	suppressed int
}

// Allow reports whether a line may be logged now, and how many were
// dropped in the last second that had drops, to be logged first.
func (l *Limiter) Allow() (ok bool, suppressed int) {
	now := time.Now().Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now != l.second {
		suppressed, l.second, l.n, l.suppressed = l.suppressed, now, 0, 0
	}
	l.n++
	if l.n > Burst {
		l.suppressed++
		return false, 0
	}
	return true, suppressed
}

// Log writes msg to lg at level if the limiter allows it, preceded by a
// line saying how many lines of what were dropped before it.
func (l *Limiter) Log(lg *slog.Logger, level slog.Level, what, msg string, args ...any) {
	ok, suppressed := l.Allow()
	if !ok {
		return
	}
	if suppressed > 0 {
		lg.Log(context.Background(), level, what+" log lines suppressed", "count", suppressed, "limit_per_second", Burst)
	}
	lg.Log(context.Background(), level, msg, args...)
}
