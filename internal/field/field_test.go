package field

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestErrors: zero fields get their defaults, fields out of range are
// reported with what they allow, and the rest are kept.
func TestErrors(t *testing.T) {
	es := Errors{Pkg: "p"}
	d, dBad := time.Duration(0), time.Microsecond
	n, nKeep, nBad, nHigh := 0, 5, 2, 11
	es.Duration("D", &d, time.Second)
	es.Duration("DBad", &dBad, time.Second)
	es.Int("N", &n, 3, 10, 7, " bytes")
	es.Int("NKeep", &nKeep, 3, 10, 7, " bytes")
	es.Int("NBad", &nBad, 3, 10, 7, " bytes")
	es.Int("NHigh", &nHigh, 1, 0, 7, "")
	assert.Equal(t, time.Second, d)
	assert.Equal(t, 7, n)
	assert.Equal(t, 5, nKeep)
	assert.Equal(t, "p: DBad must be 1ms or more, or 0 for 1s, got 1µs\n"+
		"p: NBad must be from 3 to 10 bytes, or 0 for 7, got 2", es.Err().Error())

	nNeg := -1
	es = Errors{Pkg: "p"}
	es.Int("NNeg", &nNeg, 1, 0, 7, "")
	assert.EqualError(t, es.Err(), "p: NNeg must be 1 or more, or 0 for 7, got -1")
}

// TestLeaves: nested joins flatten to their leaves, in order.
func TestLeaves(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	assert.Equal(t, []error{a, b, c}, Leaves(errors.Join(a, errors.Join(b, c))))
	assert.Equal(t, []error{a}, Leaves(a))
}
