package ratelog_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fastserve/fastserve/internal/ratelog"
)

func TestLimiterBurst(t *testing.T) {
	var l ratelog.Limiter
	var buf bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&buf, nil))
	for range ratelog.Burst * 3 {
		l.Log(lg, slog.LevelInfo, "test", "line")
	}
	// All within one second, almost always; at a second's turn the count
	// starts again, and the drops are said first.
	lines := strings.Count(buf.String(), "msg=line")
	assert.GreaterOrEqual(t, lines, ratelog.Burst)
	assert.LessOrEqual(t, lines, 2*ratelog.Burst)
}
