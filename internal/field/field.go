// Package field is the error every fastserve package returns for an
// invalid field of its configuration: which field, the value given, and
// what the field accepts. The command translates it back into the name
// of the setting (a flag, a config file key) that gave the value.
//
// Each public package declares its own name for the type (an alias:
// server.ConfigError, proxy.ConfigError), so that callers match it with
// errors.As without importing this internal package.
package field

import (
	"errors"
	"fmt"
	"time"
)

// An Error reports an invalid configuration field.
type Error struct {
	Pkg     string // the package that reports it, such as "server" or "proxy"
	Field   string // as in "IdleTimeout" or "Tune.KeepAlive.Idle"
	Value   any    // the value given
	Allowed string // what the field accepts
	Err     error  // the cause, if any
}

func (e *Error) Error() string {
	if e.Allowed == "" {
		return fmt.Sprintf("%s: %s: %v", e.Pkg, e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %s must be %s, got %v", e.Pkg, e.Field, e.Allowed, e.Value)
}

func (e *Error) Unwrap() error { return e.Err }

// Errors collects the invalid fields of one configuration (Err joins
// them) for the package Pkg.
type Errors struct {
	Pkg  string
	List []error
}

// Err is every error collected, joined, or nil.
func (es *Errors) Err() error { return errors.Join(es.List...) }

// Duration gives a zero duration field its default, def, and reports one
// that is negative or below 1 ms.
func (es *Errors) Duration(name string, d *time.Duration, def time.Duration) {
	switch {
	case *d < 0 || (*d > 0 && *d < time.Millisecond):
		es.Bad(name, *d, fmt.Sprintf("1ms or more, or 0 for %v", def))
	case *d == 0:
		*d = def
	}
}

// Int gives a zero int field its default, def, and reports one below lo
// or, if hi is not 0, above hi; unit follows the range in the report, as
// in " bytes".
func (es *Errors) Int(name string, v *int, lo, hi, def int, unit string) {
	switch {
	case *v < 0 || (*v > 0 && *v < lo) || (hi > 0 && *v > hi):
		allowed := fmt.Sprintf("%d or more%s", lo, unit)
		if hi > 0 {
			allowed = fmt.Sprintf("from %d to %d%s", lo, hi, unit)
		}
		es.Bad(name, *v, fmt.Sprintf("%s, or 0 for %d", allowed, def))
	case *v == 0:
		*v = def
	}
}

// Bad records field with value v, and what it allows.
func (es *Errors) Bad(field string, v any, allowed string) {
	es.List = append(es.List, &Error{Pkg: es.Pkg, Field: field, Value: v, Allowed: allowed})
}

// Add records an error as it is.
func (es *Errors) Add(err ...error) { es.List = append(es.List, err...) }

// Leaves flattens a tree of errors.Join into its leaves.
func Leaves(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var errs []error
	for _, e := range j.Unwrap() {
		errs = append(errs, Leaves(e)...)
	}
	return errs
}
