package certs

import (
	"context"
	"log/slog"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fastserve/fastserve/internal/ratelog"
)

// newZapLogger is a zap logger (certmagic's) that writes to l, so that
// certmagic's lines come out with the server's, in its format and level.
// Its errors are logged at most ratelog.Burst a second: certmagic logs one
// for each TLS-ALPN-01 handshake it has no challenge for, which any client
// can send, with a server name of the client's choosing.
func newZapLogger(l *slog.Logger) *zap.Logger {
	return zap.New(&slogCore{h: l.Handler(), errLimit: new(ratelog.Limiter)})
}

// slogCore is a zapcore.Core over a slog.Handler.
type slogCore struct {
	h        slog.Handler
	attrs    []slog.Attr      // from With, before h's own
	errLimit *ratelog.Limiter // shared by the cores With makes
}

var _ zapcore.Core = (*slogCore)(nil)

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{h: c.h, attrs: append(slices.Clip(c.attrs), attrs(fields)...), errLimit: c.errLimit}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if e.Level >= zapcore.ErrorLevel {
		ok, suppressed := c.errLimit.Allow()
		if !ok {
			return nil
		}
		if suppressed > 0 {
			r := slog.NewRecord(e.Time, slog.LevelWarn, "certmagic error log lines suppressed", 0)
			r.AddAttrs(slog.Int("count", suppressed), slog.Int("limit_per_second", ratelog.Burst))
			_ = c.h.Handle(context.Background(), r)
		}
	}
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	r.AddAttrs(c.attrs...)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(attrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

// attrs turns zap fields into slog attributes, in their order.
func attrs(fields []zapcore.Field) []slog.Attr {
	out := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		for k, v := range enc.Fields {
			out = append(out, slog.Any(k, v))
		}
	}
	return out
}
