package accesslog

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fastserve/fastserve/internal/reqinfo"
)

// A Format is the shape of a line, compiled once into a list of append
// functions, so that writing a line allocates nothing: Combined, JSON, or
// a format string compiled by Compile. The zero Format is Combined.
type Format struct {
	name string
	ops  []appender
}

// An appender appends one part of the line of the request in ctx,
// answered at now.
type appender func(b []byte, ctx *fasthttp.RequestCtx, now time.Time) []byte

// combinedFormat is the Apache and nginx "combined" format, with nginx's
// $request_time added at the end.
const combinedFormat = `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time`

var (
	// Combined is the Apache and nginx "combined" format, with the
	// request's duration in seconds added at the end, as nginx's
	// $request_time:
	//
	//	remote - - [time] "METHOD URI PROTO" status bytes "referer" "user-agent" duration
	//
	// It is the format string
	//
	//	$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time
	Combined = mustCompile("combined", combinedFormat)

	// JSON is one JSON object a line: time, remote, method, uri, proto,
	// status, bytes, duration_s, referer, user_agent, and request_id when
	// the request has an X-Request-ID.
	JSON = Format{name: "json", ops: []appender{appendJSONLine}}
)

// String is the format's name: combined, json, or its format string.
func (f Format) String() string {
	if f.ops == nil {
		return Combined.name
	}
	return f.name
}

// ParseFormat returns the Format named "combined" or "json" (empty is
// Combined), or, for a value with a "$" in it, the format string it is,
// compiled (see Compile).
func ParseFormat(s string) (Format, error) {
	switch {
	case s == "" || s == "combined":
		return Combined, nil
	case s == "json":
		return JSON, nil
	case strings.Contains(s, "$"):
		return Compile(s)
	}
	return Format{}, fmt.Errorf("accesslog: format %q is not combined, json, or a format string of $variables", s)
}

// Compile compiles a format string in the manner of nginx's log_format:
// variables ($name, or ${name} when a letter, digit or _ follows) between
// literal text, one line a request. Variables (Variables lists them):
//
//	$remote_addr             the client's IP address
//	$time_local              when the request began: 02/Jan/2006:15:04:05 -0700
//	$time_iso8601            when the request began: 2006-01-02T15:04:05-07:00
//	$request                 the request line: METHOD URI PROTO
//	$request_method          the method
//	$request_uri             the URI as sent, query included
//	$status                  the response's status
//	$body_bytes_sent         the response body's length, - if unknown (streamed without Content-Length)
//	$http_<name>             the request header <name>, _ for -: $http_referer, $http_user_agent, $http_x_forwarded_for
//	$request_time            seconds from the request's start to its answer, to the millisecond
//	$host                    the Host header, lower case, without its port
//	$request_id              the X-Request-ID request header (package sites sets it)
//	$request_length          bytes in: the request line, the headers as received, and the body's length
//	$ssl_protocol            TLSv1.2 or TLSv1.3; - without TLS
//	$ssl_session_reused      r if the TLS session was resumed, . if not; - without TLS
//	$upstream_addr           the upstream's host:port (as configured), each attempt's, comma-separated
//	$upstream_response_time  seconds from sending to the upstream to its response head, each attempt's
//	$site                    the first host name of the site that served the request (package sites)
//
// As in nginx, a value that is empty is written "-", and the bytes of a
// value that could break a line or a quoted field (control bytes, ", \,
// and bytes from 0x7f) are written \xHH. A format string makes a text
// line: there is no JSON variant (JSON is a fixed format).
//
// The body's length in $request_length is as read: for a chunked body
// read whole, its length once decoded; for a body streamed to the
// handler, its Content-Length, or nothing if chunked.
//
// An unknown variable is an error that names it and lists the known ones.
func Compile(format string) (Format, error) {
	return compile(format, format)
}

func mustCompile(name, format string) Format {
	f, err := compile(name, format)
	if err != nil {
		panic(err)
	}
	return f
}

func compile(name, format string) (Format, error) {
	var ops []appender
	var text []byte // literal text not yet an appender
	flush := func() {
		if len(text) > 0 {
			ops = append(ops, literal(string(text)))
			text = text[:0]
		}
	}
	for rest := format; rest != ""; {
		i := strings.IndexByte(rest, '$')
		if i < 0 {
			text = append(text, rest...)
			break
		}
		text = append(text, rest[:i]...)
		rest = rest[i+1:]
		var v string
		if strings.HasPrefix(rest, "{") {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return Format{}, fmt.Errorf("accesslog: format %q: ${ without its }", format)
			}
			v, rest = rest[1:end], rest[end+1:]
		} else {
			n := 0
			for n < len(rest) && isNameByte(rest[n]) {
				n++
			}
			v, rest = rest[:n], rest[n:]
		}
		op, err := variable(v)
		if err != nil {
			return Format{}, fmt.Errorf("accesslog: format %q: %w", format, err)
		}
		flush()
		ops = append(ops, op)
	}
	text = append(text, '\n')
	flush()
	return Format{name: name, ops: ops}, nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func literal(s string) appender {
	return func(b []byte, _ *fasthttp.RequestCtx, _ time.Time) []byte { return append(b, s...) }
}

// variable is the appender of the variable name, or an error naming it
// and the known ones.
func variable(name string) (appender, error) {
	if op, ok := variables[name]; ok {
		return op, nil
	}
	if h, ok := strings.CutPrefix(name, "http_"); ok && h != "" {
		return header(headerName(h)), nil
	}
	if name == "" {
		return nil, fmt.Errorf("a $ names no variable (known: %s)", strings.Join(Variables(), " "))
	}
	return nil, fmt.Errorf("unknown variable $%s (known: %s)", name, strings.Join(Variables(), " "))
}

// Variables are the names of the variables a format string may use,
// sorted, $http_<name> standing for every request header.
func Variables() []string {
	names := make([]string, 0, len(variables)+1)
	for name := range variables {
		names = append(names, "$"+name)
	}
	names = append(names, "$http_<name>")
	slices.Sort(names)
	return names
}

// headerName turns the name of an $http_ variable into its header's:
// user_agent is User-Agent.
func headerName(v string) string {
	b := []byte(v)
	upper := true
	for i, c := range b {
		switch {
		case c == '_':
			b[i], upper = '-', true
			continue
		case upper && c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && c >= 'A' && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		upper = false
	}
	return string(b)
}

// header appends the request header name's value.
func header(name string) appender {
	return func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		return appendValue(b, ctx.Request.Header.Peek(name))
	}
}

// variables are the appenders of the variables by name, but $http_<name>.
var variables = map[string]appender{
	"remote_addr": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		return appendRemote(b, ctx)
	},
	"time_local": func(b []byte, ctx *fasthttp.RequestCtx, now time.Time) []byte {
		return began(ctx, now).AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	},
	"time_iso8601": func(b []byte, ctx *fasthttp.RequestCtx, now time.Time) []byte {
		return began(ctx, now).AppendFormat(b, "2006-01-02T15:04:05-07:00")
	},
	"request": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		b = appendQuoted(b, ctx.Method())
		b = append(b, ' ')
		b = appendQuoted(b, ctx.RequestURI())
		b = append(b, ' ')
		return appendQuoted(b, ctx.Request.Header.Protocol())
	},
	"request_method": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		return appendValue(b, ctx.Method())
	},
	"request_uri": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		return appendValue(b, ctx.RequestURI())
	},
	"status": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		return strconv.AppendInt(b, int64(ctx.Response.StatusCode()), 10)
	},
	"body_bytes_sent": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		return appendLength(b, ctx, "-")
	},
	"request_time": func(b []byte, ctx *fasthttp.RequestCtx, now time.Time) []byte {
		return appendSeconds(b, now.Sub(began(ctx, now)))
	},
	"host": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		return appendHost(b, ctx.Request.Header.Host())
	},
	"request_id": header("X-Request-ID"),
	"request_length": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		return strconv.AppendInt(b, requestLength(ctx), 10)
	},
	"ssl_protocol": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		cs, ok := connState(ctx)
		if !ok {
			return append(b, '-')
		}
		return append(b, tlsVersion(cs.Version)...)
	},
	"ssl_session_reused": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		cs, ok := connState(ctx)
		switch {
		case !ok:
			return append(b, '-')
		case cs.DidResume:
			return append(b, 'r')
		}
		return append(b, '.')
	},
	"upstream_addr": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		ups := reqinfo.Upstreams(ctx)
		if len(ups) == 0 {
			return append(b, '-')
		}
		for i, u := range ups {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendQuoted(b, u.Addr)
		}
		return b
	},
	"upstream_response_time": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		ups := reqinfo.Upstreams(ctx)
		if len(ups) == 0 {
			return append(b, '-')
		}
		for i, u := range ups {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendSeconds(b, u.Time)
		}
		return b
	},
	"site": func(b []byte, ctx *fasthttp.RequestCtx, _ time.Time) []byte {
		return appendValue(b, reqinfo.SiteName(ctx))
	},
}

// appendSeconds appends d in seconds, to the millisecond, as nginx's
// $request_time.
func appendSeconds(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, d.Seconds(), 'f', 3, 64)
}

// appendValue appends a variable's value escaped, or "-" if it is empty.
func appendValue[T string | []byte](b []byte, v T) []byte {
	if len(v) == 0 {
		return append(b, '-')
	}
	return appendQuoted(b, v)
}

// appendHost appends host as nginx's $host: lower case, without a port.
func appendHost(b, host []byte) []byte {
	if len(host) > 0 && host[0] == '[' { // [::1]:443
		if end := bytes.IndexByte(host, ']'); end > 0 {
			host = host[:end+1]
		}
	} else if i := bytes.IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if len(host) == 0 {
		return append(b, '-')
	}
	for _, c := range host {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = appendEscaped(b, c)
	}
	return b
}

// requestLength is the request's size on the wire, as nginx's
// $request_length: its request line (rebuilt, with one space between its
// parts), its headers as received, and its body: the body's length as
// read, or, for a body streamed to the handler, its Content-Length (a
// chunked one counts 0: what the handler read of it is not known here).
func requestLength(ctx *fasthttp.RequestCtx) int64 {
	h := &ctx.Request.Header
	n := len(h.Method()) + 1 + len(h.RequestURI()) + 1 + len(h.Protocol()) + 2
	n += len(h.RawHeaders())
	if !ctx.Request.IsBodyStream() {
		n += len(ctx.Request.Body())
	} else if cl := h.ContentLength(); cl > 0 {
		n += cl
	}
	return int64(n)
}

// tlsConn is a connection that says what its TLS handshake agreed: a
// *tls.Conn, or the engine's connection.
type tlsConn interface {
	ConnectionState() tls.ConnectionState
}

var _ tlsConn = (*tls.Conn)(nil)

// connState is the TLS state of ctx's connection, if it has TLS.
func connState(ctx *fasthttp.RequestCtx) (tls.ConnectionState, bool) {
	c, ok := ctx.Conn().(tlsConn)
	if !ok {
		return tls.ConnectionState{}, false
	}
	return c.ConnectionState(), true
}

// tlsVersion names a TLS version as nginx's $ssl_protocol does.
func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return "-"
}
