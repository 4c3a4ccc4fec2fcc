package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// load fills the settings not given as flags from FASTSERVE_* variables,
// then from the config file: flags win over the environment, which wins
// over the file.
func (s *settings) load(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) error {
	s.flags = fs
	s.source = map[string]string{}
	s.unset = map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { s.source[f.Name] = "flag --" + f.Name })

	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || !isSetting(f.Name) {
			return
		}
		name := envName(f.Name)
		v, ok := lookupEnv(name)
		if !ok {
			return
		}
		src := "environment " + name
		if strings.TrimSpace(v) == "" && !row(f.Name).emptyIsNone {
			give := "give it a value"
			if want := wantOf(f); want != "a value" {
				give += " (" + want + ")"
			}
			errs = append(errs, fmt.Errorf("%s: empty: %s, or unset it for the default (%s)", src, give, defaultOf(f)))
			s.unset[f.Name] = true
			return
		}
		vals := []string{v}
		if t := f.Value.Type(); t == "stringArray" || t == "stringSlice" {
			vals = strings.Split(v, ",")
		}
		for _, v := range vals {
			if err := f.Value.Set(strings.TrimSpace(v)); err != nil {
				errs = append(errs, badValue(f, v, src, err))
				s.unset[f.Name] = true
				return
			}
		}
		f.Changed = true
		s.source[f.Name] = src
	})
	errs = append(errs, unknownEnv(fs, environ())...)
	if s.configFile == "" {
		s.configFile, _ = lookupEnv(envName("config"))
	}
	if s.configFile != "" {
		errs = append(errs, s.loadFile(fs)...)
	}
	return errors.Join(errs...)
}

// environ is the process's environment, for unknownEnv.
var environ = os.Environ

// unknownEnv reports each FASTSERVE_* variable in env that names no
// setting, as an unknown config file key is: a misspelt variable would
// otherwise be ignored in silence.
func unknownEnv(fs *pflag.FlagSet, env []string) []error {
	known := map[string]bool{envName("config"): true}
	fs.VisitAll(func(f *pflag.Flag) {
		if isSetting(f.Name) {
			known[envName(f.Name)] = true
		}
	})
	var errs []error
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "FASTSERVE_") || known[name] {
			continue
		}
		msg := fmt.Sprintf("environment %s: unknown setting", name)
		if f := closest(fs, name); f != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", envName(f))
		}
		errs = append(errs, errors.New(msg+"; variables are FASTSERVE_ and a flag's name of 'fastserve serve --help', upper case, _ for -"))
	}
	return errs
}

// closest is the flag whose variable name is most like name (characters
// in common at the same place, after FASTSERVE_), if it is alike in most
// of them.
func closest(fs *pflag.FlagSet, name string) string {
	name = strings.TrimPrefix(name, "FASTSERVE_")
	best, bestScore := "", 0
	fs.VisitAll(func(f *pflag.Flag) {
		if !isSetting(f.Name) {
			return
		}
		v := strings.TrimPrefix(envName(f.Name), "FASTSERVE_")
		score := 0
		for i := 0; i < min(len(v), len(name)); i++ {
			if v[i] == name[i] {
				score++
			}
		}
		if score > bestScore && score*4 >= max(len(v), len(name))*3 {
			best, bestScore = f.Name, score
		}
	})
	return best
}

// isSetting reports whether the flag name is a setting of table: not
// --config, nor cobra's --help, which no variable or file key may set.
func isSetting(name string) bool {
	return slices.ContainsFunc(table, func(r setting) bool { return r.name == name })
}

// defaultOf says what a setting's default is, for an error message.
func defaultOf(f *pflag.Flag) string {
	if f.DefValue == "" || f.DefValue == "[]" {
		return "none"
	}
	return f.DefValue
}

func envName(flag string) string {
	return "FASTSERVE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// parseConfig reads b, the bytes of the config file name, as YAML. The
// yaml library's syntax errors name the line where the enclosing block
// starts (libyaml's context mark), often lines above the fault: the error
// here names the first line at which the file, read only that far, fails
// alike (the same message: a flow sequence cut in two fails otherwise),
// found by bisection (a file of 10,000 lines is read 14 times more), and
// says what the library says.
func parseConfig(name string, b []byte) (yaml.Node, error) {
	var doc yaml.Node
	err := yaml.Unmarshal(b, &doc)
	if err == nil {
		return doc, nil
	}
	var ends []int // where each line ends, past its newline
	for i, c := range b {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		ends = append(ends, len(b)) // the last line, unended
	}
	failsAlike := func(line int) bool {
		var prefix yaml.Node
		e := yaml.Unmarshal(b[:ends[line-1]], &prefix)
		return e != nil && e.Error() == err.Error()
	}
	// The first line whose prefix fails alike, of 1 to len(ends): the
	// whole file does.
	line := sort.Search(len(ends), func(i int) bool { return failsAlike(i + 1) }) + 1
	if line > len(ends) {
		return doc, fmt.Errorf("config file %s: %w", name, err)
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		_, msg, _ = strings.Cut(msg, ": ")
	}
	return doc, fmt.Errorf("config file %s:%d: yaml: %s", name, line, msg)
}

// loadFile sets, from the YAML mapping in the config file, the settings
// that neither a flag nor the environment gave.
func (s *settings) loadFile(fs *pflag.FlagSet) []error {
	b, err := os.ReadFile(s.configFile)
	if err != nil {
		return []error{fmt.Errorf("config file: %w", err)}
	}
	doc, err := parseConfig(s.configFile, b)
	if err != nil {
		return []error{err}
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	top, errs := resolveAliases(s.configFile, doc.Content[0])
	if len(errs) > 0 {
		return errs
	}
	if top.Kind != yaml.MappingNode {
		return []error{fmt.Errorf("config file %s:%d: want a mapping of setting names to values", s.configFile, top.Line)}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		src := fmt.Sprintf("config file %s:%d", s.configFile, k.Line)
		if k.Value == "sites" || isRuleKey(k.Value) {
			if seen[k.Value] {
				errs = append(errs, fmt.Errorf("%s: %q is set twice", src, k.Value))
				continue
			}
			seen[k.Value] = true
			if k.Value == "sites" {
				errs = append(errs, s.loadSites(v)...)
			} else {
				errs = append(errs, s.loadRule(k.Value, v)...) // the default site's, as a site's
			}
			continue
		}
		f := fs.Lookup(k.Value)
		if f == nil || !isSetting(k.Value) {
			msg := fmt.Sprintf("%s: unknown setting %q", src, k.Value)
			if alt := strings.ReplaceAll(strings.ToLower(k.Value), "_", "-"); alt != k.Value && fs.Lookup(alt) != nil {
				msg += fmt.Sprintf(" (did you mean %q?)", alt)
			}
			errs = append(errs, errors.New(msg+"; settings are named as the flags in 'fastserve serve --help', and the default site's rules as a site's ("+ruleKeys+")"))
			continue
		}
		if seen[k.Value] {
			errs = append(errs, fmt.Errorf("%s: %q is set twice", src, k.Value))
			continue
		}
		seen[k.Value] = true
		if f.Changed {
			continue // a flag or the environment wins
		}
		var vals []string
		switch {
		case v.Kind == yaml.ScalarNode:
			vals = []string{v.Value}
		case v.Kind == yaml.SequenceNode && isList(f):
			for _, e := range v.Content {
				vals = append(vals, e.Value)
			}
		default:
			errs = append(errs, fmt.Errorf("%s: %q must be a single value", src, k.Value))
			continue
		}
		for _, val := range vals {
			if err := f.Value.Set(val); err != nil {
				errs = append(errs, badValue(f, val, src, err))
				s.unset[f.Name] = true
				break
			}
		}
		f.Changed = true
		s.source[f.Name] = src
	}
	return errs
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// isList reports whether a setting takes several values: a config file may
// give them as a YAML sequence.
func isList(f *pflag.Flag) bool {
	switch f.Value.Type() {
	case "stringArray", "stringSlice", "networks":
		return true
	}
	return false
}

// networks is a list of IP networks, each given as a CIDR or as one
// address, separated by commas or given one per flag.
type networks []netip.Prefix

func (n *networks) String() string {
	if slices.Equal(*n, anyNetwork) {
		return "any"
	}
	parts := make([]string, len(*n))
	for i, p := range *n {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// anyNetwork is every address, IPv4 and IPv6: "any".
var anyNetwork = networks{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// Set adds the networks in v, all or none; "any" is every address.
func (n *networks) Set(v string) error {
	var add []netip.Prefix
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if part == "any" {
			add = append(add, anyNetwork...)
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil || a.Zone() != "" {
				return err
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		add = append(add, p.Masked())
	}
	*n = append(*n, add...)
	return nil
}

func (n *networks) Type() string { return "networks" }
