package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/fastserve/fastserve/certs"
	"github.com/fastserve/fastserve/proxy"
)

// derived are the values the server will use for the settings it derives
// from what was given (--max-conns 0, --listeners 0, --idle-park-after 0,
// --tcp-user-timeout 0), by setting name, as server.Config.Effective
// fills them in: check prints them, so that what it shows is what serve
// runs.
func (s *settings) derived(c configs) map[string]string {
	eff, err := c.Server.Effective()
	if err != nil {
		return nil
	}
	if eff.Tune.UserTimeout == 0 {
		eff.Tune.UserTimeout = eff.Tune.EffectiveUserTimeout()
	}
	out := map[string]string{}
	derive(out, "Server.", reflect.ValueOf(c.Server), reflect.ValueOf(eff))
	// The proxy's shared settings, with a route of its own: the routes
	// are the sites', and their errors are told elsewhere.
	pc := c.Proxy
	pc.Routes = []proxy.Route{{Path: "/", Upstreams: []string{"http://127.0.0.1:1"}}}
	if peff, err := pc.Effective(); err == nil {
		derive(out, "Proxy.", reflect.ValueOf(pc), reflect.ValueOf(peff))
	}
	return out
}

// derive puts in out, by setting name, the value in full of each field
// of table under prefix whose value in given differs from it.
func derive(out map[string]string, prefix string, given, full reflect.Value) {
	for _, r := range table {
		path, ok := strings.CutPrefix(r.field, prefix)
		if !ok || r.setter != nil || r.conv != nil || strings.Contains(path, "[]") {
			continue
		}
		g, f := fieldAt(given, path), fieldAt(full, path)
		if g.Kind() == reflect.Slice || reflect.DeepEqual(g.Interface(), f.Interface()) {
			continue
		}
		out[r.name] = fmt.Sprint(f.Interface())
	}
}

// fieldAt is the field at path ("Tune.KeepAlive.Idle") in the struct v.
func fieldAt(v reflect.Value, path string) reflect.Value {
	for _, name := range strings.Split(path, ".") {
		v = v.FieldByName(name)
	}
	return v
}

// expirySoon is how far ahead check warns of a certificate's end.
const expirySoon = 7 * 24 * time.Hour

// certNotes warns, for each certificate file whose leaf has ended or ends
// within expirySoon of now, naming the file and the date: the server
// serves it (a client refuses it), so it is a note, not an error.
func certNotes(pairs []certs.KeyPair, now time.Time) []string {
	var notes []string
	for _, p := range pairs {
		c, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil || c.Leaf == nil {
			continue // Validate reported it
		}
		end := c.Leaf.NotAfter.UTC().Format(time.RFC3339)
		switch {
		case !now.Before(c.Leaf.NotAfter):
			notes = append(notes, fmt.Sprintf("certificate %s expired on %s: clients refuse it", p.CertFile, end))
		case c.Leaf.NotAfter.Sub(now) < expirySoon:
			notes = append(notes, fmt.Sprintf("certificate %s expires on %s, within %d days: renew it", p.CertFile, end, int(expirySoon.Hours()/24)))
		}
	}
	return notes
}

// creatableDir wants a directory that is there, or that can be made: what
// serve makes (the ACME storage), check tries, and removes what it tried.
func creatableDir(v string) string {
	const want = "a directory that exists or can be made, writable by this user"
	dir := v
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return want
			}
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return want
		}
		dir = parent
	}
	tmp, err := os.MkdirTemp(dir, ".fastserve-check-")
	if err != nil {
		return want
	}
	os.Remove(tmp)
	return ""
}
