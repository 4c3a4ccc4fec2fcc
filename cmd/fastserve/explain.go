package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/spf13/pflag"

	"github.com/fastserve/fastserve/internal/field"
	"github.com/fastserve/fastserve/server"
	"github.com/fastserve/fastserve/tune"
)

// explain rewrites the library's errors about configs.Server or
// configs.Proxy (of is "Server" or "Proxy") in the settings' names, one
// line each: --keepalive-idle=500ms (flag --keepalive-idle): invalid
// value: must be ...
func (s *settings) explain(err error, of string) error {
	var lines []error
	for _, e := range field.Leaves(err) {
		var ce *server.ConfigError
		if !errors.As(e, &ce) {
			lines = append(lines, e)
			continue
		}
		if of == "Server" {
			if se, ok := s.certError(ce); ok {
				lines = append(lines, se)
				continue
			}
		}
		r, ok := fieldSetting(of + "." + ce.Field)
		if !ok {
			lines = append(lines, e)
			continue
		}
		if s.unset[r.name] {
			continue // its refused value is reported already
		}
		v := s.flags.Lookup(r.name).Value.String()
		var inUse *tune.AddrInUseError
		if errors.As(ce.Err, &inUse) {
			lines = append(lines, fmt.Errorf("--%s=%s%s: %s", r.name, v, s.from(r.name), inUseAdvice(r.name, v)))
			continue
		}
		if sv := s.value(r.name); sv.Kind() == reflect.Slice && sv.Len() > 0 {
			v = fmt.Sprint(ce.Value) // the one value at fault
		}
		if ce.Allowed == "" || errors.Is(ce.Err, errors.ErrUnsupported) {
			cause := ce.Err
			if cause == nil || errors.Is(ce.Err, errors.ErrUnsupported) {
				cause = e
			}
			lines = append(lines, fmt.Errorf("--%s=%s%s: %s", r.name, v, s.from(r.name), flagWords(cause.Error(), of)))
			continue
		}
		allowed := ce.Allowed
		if r.allowed != "" {
			allowed = r.allowed
		}
		lines = append(lines, fmt.Errorf("--%s=%s%s: invalid value: must be %s", r.name, v, s.from(r.name), flagWords(allowed, of)))
	}
	return errors.Join(lines...)
}

// inUseAdvice says what to do when the listener of the setting name
// cannot bind addr, which a socket listens on already.
func inUseAdvice(name, addr string) string {
	msg := "address " + addr + " in use by another process"
	if name == "admin" {
		return msg + "; an admin listener is never shared: give each process its own --admin"
	}
	return msg + "; to replace the running server, start both with --handover PATH; " +
		"to serve one address from several processes on purpose, give every one --share-port (same user only)"
}

// flagWords rewrites the names of configs.Server or configs.Proxy fields
// (of is "Server" or "Proxy") in a library's message as the settings that
// set them: "0 or negative with KeepIdleBuffers" says "with
// --reduce-memory=false". A field the command does not set keeps its name.
func flagWords(msg, of string) string {
	for _, r := range table {
		name, ok := strings.CutPrefix(r.field, of+".")
		if !ok || r.setter != nil || strings.Contains(name, "[]") {
			continue
		}
		flag := "--" + r.name
		if r.conv != nil && reflect.ValueOf(r.conv).Pointer() == reflect.ValueOf(not).Pointer() {
			flag += "=false"
		}
		msg = regexp.MustCompile(`\b`+regexp.QuoteMeta(name)+`\b`).ReplaceAllLiteralString(msg, flag)
	}
	return msg
}

var listIndex = regexp.MustCompile(`\[\d+\]`)

// fieldSetting is the setting of table that sets field, a path in
// configs whose list indexes are ignored ("Server.TLS.Certificates[1]"):
// the one that names it, or else the first that names a field inside it.
func fieldSetting(field string) (setting, bool) {
	field = strings.TrimSuffix(listIndex.ReplaceAllString(field, "[]"), "[]")
	for _, r := range table {
		if r.field == field || strings.HasPrefix(r.field, field+".") || strings.HasPrefix(r.field, field+"[]") {
			return r, true
		}
	}
	return setting{}, false
}

// unquote undoes the %q of a ConfigError's string value.
func unquote(v any) any {
	if str, ok := v.(string); ok && len(str) >= 2 && str[0] == '"' {
		var u string
		if _, err := fmt.Sscanf(str, "%q", &u); err == nil {
			return u
		}
	}
	return v
}

// badValue is the one-line error for a value a setting cannot take.
func badValue(f *pflag.Flag, v, src string, err error) error {
	return fmt.Errorf("--%s=%s (%s): invalid value: want %s", f.Name, v, src, wantOf(f))
}

func wantOf(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "duration":
		return "a duration such as 60s, 1m30s or 0"
	case "int":
		return "a whole number"
	case "bool":
		return "true or false"
	case "networks":
		return "a CIDR such as 10.0.0.0/8, an address, or any"
	case "stringSlice":
		return "names separated by commas"
	case "string", "stringArray":
		return "a value"
	}
	return "a " + f.Value.Type()
}

// from names where a setting came from, for an error message.
func (s *settings) from(flag string) string {
	if src, ok := s.source[flag]; ok {
		return " (" + src + ")"
	}
	return " (default)"
}
