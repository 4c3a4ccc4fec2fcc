package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/fastserve/fastserve/server"
)

// explainProxy rewrites the proxy's errors in the settings' names, one
// line each: a route of the config file by its line, the rest by flag.
func (s *settings) explainProxy(err error, fs *pflag.FlagSet) error {
	var lines []error
	for _, e := range unjoin(err) {
		var ce *server.ConfigError
		if !errors.As(e, &ce) {
			lines = append(lines, e)
			continue
		}
		var i, j int
		field := ce.Field
		if n, _ := fmt.Sscanf(ce.Field, "Routes[%d].Upstreams[%d]", &i, &j); n == 2 {
			field = "Upstreams[]"
		} else if n, _ := fmt.Sscanf(ce.Field, "Routes[%d].", &i); n == 1 {
			field = ce.Field[strings.Index(ce.Field, "].")+2:]
		}
		switch {
		case strings.HasPrefix(ce.Field, "Routes[") && i < len(s.routes):
			key := map[string]string{"Path": "path", "Upstreams": "proxy", "Upstreams[]": fmt.Sprintf("proxy[%d]", j)}[field]
			lines = append(lines, fmt.Errorf("%s: routes[%d].%s=%v: invalid value: must be %s", s.routes[i].src, i, key, unquote(ce.Value), ce.Allowed))
		case strings.HasPrefix(ce.Field, "Routes["):
			v := fmt.Sprint(unquote(ce.Value))
			if field == "Path" {
				v = strings.Join(s.proxy, ",") // --proxy's route for "/" and a file route for "/"
				lines = append(lines, fmt.Errorf("--proxy=%s%s: invalid value: a route of the config file has the path \"/\" already", v, s.from("proxy")))
				continue
			}
			lines = append(lines, fmt.Errorf("--proxy=%s%s: invalid value: must be %s", v, s.from("proxy"), ce.Allowed))
		case proxyFieldFlags[ce.Field] != "":
			flag := proxyFieldFlags[ce.Field]
			lines = append(lines, fmt.Errorf("--%s=%s%s: invalid value: must be %s", flag, fs.Lookup(flag).Value.String(), s.from(flag), ce.Allowed))
		default:
			lines = append(lines, e)
		}
	}
	return errors.Join(lines...)
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
		return "a CIDR such as 10.0.0.0/8 or an address"
	case "stringSlice":
		return "names separated by commas"
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

// explain rewrites the server's errors in the settings' names, one line
// each: --keepalive-idle=500ms (flag --keepalive-idle): must be ...
func (s *settings) explain(err error, fs *pflag.FlagSet) error {
	var lines []error
	for _, e := range unjoin(err) {
		var ce *server.ConfigError
		if !errors.As(e, &ce) {
			lines = append(lines, e)
			continue
		}
		flag, ok := fieldFlags[ce.Field]
		v := ""
		switch {
		case strings.HasPrefix(ce.Field, "TLS.Certificates["):
			flag, v = "cert", fmt.Sprint(ce.Value)
		case strings.HasPrefix(ce.Field, "TLS.SessionTicketKeyFiles["):
			flag, v = "session-ticket-keys", fmt.Sprint(ce.Value)
		case ce.Field == "ACME.Domains":
			flag, v = "acme", fmt.Sprint(ce.Value)
		case ok:
			v = fs.Lookup(flag).Value.String()
		default:
			lines = append(lines, e)
			continue
		}
		if ce.Allowed == "" || errors.Is(ce.Err, errors.ErrUnsupported) {
			cause := ce.Err
			if cause == nil || errors.Is(ce.Err, errors.ErrUnsupported) {
				cause = e
			}
			lines = append(lines, fmt.Errorf("--%s=%s%s: %v", flag, v, s.from(flag), cause))
			continue
		}
		lines = append(lines, fmt.Errorf("--%s=%s%s: invalid value: must be %s", flag, v, s.from(flag), ce.Allowed))
	}
	return errors.Join(lines...)
}

// unjoin flattens errors.Join trees into their leaves.
func unjoin(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var errs []error
	for _, e := range j.Unwrap() {
		errs = append(errs, unjoin(e)...)
	}
	return errs
}
