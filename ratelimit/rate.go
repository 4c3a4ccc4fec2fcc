package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A Rate is a sustained rate of requests: Count per Per. A limiter lets
// one request through every Per/Count on average, past its burst.
type Rate struct {
	Count int           // requests, 1 or more
	Per   time.Duration // the period they are counted over
}

// units are the periods a rate is written with: "10/s", "600/m", "1/h".
var units = [...]struct {
	name string
	per  time.Duration
}{{"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}

// rateSyntax says how a rate is written, for errors.
const rateSyntax = "N/s, N/m or N/h, N a whole number of 1 or more (10/s, 600/m, 1/h)"

// A RateError is a rate ParseRate cannot read: the text given, and what
// a rate may be.
type RateError struct {
	Value   string
	Allowed string
}

func (e *RateError) Error() string {
	return fmt.Sprintf("ratelimit: rate %q: must be %s", e.Value, e.Allowed)
}

// ParseRate reads a rate as "10/s", "600/m" or "1/h" (nginx's "10r/s"
// too): a whole number of requests of 1 or more, per second, minute or
// hour. Its error is a *RateError.
func ParseRate(s string) (Rate, error) {
	num, unit, ok := strings.Cut(s, "/")
	num = strings.TrimSuffix(num, "r")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 1 || strings.HasPrefix(num, "+") {
		return Rate{}, &RateError{s, rateSyntax}
	}
	for _, u := range units {
		if unit == u.name {
			r := Rate{Count: n, Per: u.per}
			if r.interval() < 1 {
				return Rate{}, &RateError{s, fmt.Sprintf("at most %d/%s", u.per.Nanoseconds(), u.name)}
			}
			return r, nil
		}
	}
	return Rate{}, &RateError{s, rateSyntax}
}

// String writes r as ParseRate reads it ("10/s"), or with its period as a
// duration ("5/100ms") if that is not a second, a minute or an hour;
// "none" for the zero Rate.
func (r Rate) String() string {
	if r == (Rate{}) {
		return "none"
	}
	for _, u := range units {
		if r.Per == u.per {
			return fmt.Sprintf("%d/%s", r.Count, u.name)
		}
	}
	return fmt.Sprintf("%d/%v", r.Count, r.Per)
}

// interval is the time between two requests at rate r, in nanoseconds
// (GCRA's emission interval); 0 for a rate faster than one a
// nanosecond, or not a rate.
func (r Rate) interval() int64 {
	if r.Count < 1 || r.Per <= 0 {
		return 0
	}
	return r.Per.Nanoseconds() / int64(r.Count)
}
