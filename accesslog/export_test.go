package accesslog

// Empty drops what is buffered, for a benchmark to measure lines that
// are kept, not dropped past the backlog.
func (l *Log) Empty() {
	l.mu.Lock()
	l.buf = l.buf[:0]
	l.mu.Unlock()
}
