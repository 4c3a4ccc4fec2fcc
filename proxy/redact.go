package proxy

import "strings"

// redacted is an error about an upstream's answer, as the log shows it:
// without the bytes of the answer that fasthttp quotes in its parse
// errors (a header line, a status line), which may hold the upstream's
// cookies or credentials. fasthttp quotes them with %q; each quoted
// string, and anything after "contents:" (fasthttp's buffer dumps), is
// replaced. What the error is about stays: "malformed mime header:
// missing colon: [redacted]".
type redacted struct{ err error }

func (r redacted) Unwrap() error { return r.err }

func (r redacted) Error() string {
	if r.err == nil {
		return "<nil>"
	}
	s := r.err.Error()
	if i := strings.Index(s, "contents:"); i >= 0 {
		s = s[:i] + "contents: [redacted]"
	}
	if !strings.ContainsRune(s, '"') {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString("[redacted]")
		s = s[i+1:]
		// The end of the quoted string: the next quote not escaped. An
		// unterminated one runs to the end.
		end := len(s)
		for j := 0; j < len(s); j++ {
			if s[j] == '\\' {
				j++
			} else if s[j] == '"' {
				end = j + 1
				break
			}
		}
		s = s[end:]
	}
}
