package httpsyntax

import "regexp"

// Redacted replaces what Redact removes.
const Redacted = "[redacted]"

// credential is a header line that carries a secret, in a request head
// quoted as Go's %q writes it (fasthttp's log of a request it could not
// read): the name at the start of a line (after an escaped \n, or at the
// start of a quoted string), then ':' or blanks, then the value up to an
// escaped \n or the closing quote (a lone \r is inside the value: a
// value with a CR in it is why the request could not be read). Escapes are consumed in pairs,
// so an escaped quote or backslash inside the value does not end it.
var credential = regexp.MustCompile(`(?i)((?:\\n|")[ \t]*(?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-auth-token)(?:[ \t]*:|[ \t]+))(?:[^\\"]|\\[^n])*`)

// invalidHeader is fasthttp's own quote of a header it could not parse
// ("invalid header value %q", "invalid header key %q"), without the
// header's name: it may be any header's, a credential's too, so it goes.
var invalidHeader = regexp.MustCompile(`(invalid header (?:value|key) )"(?:[^\\"]|\\.)*"`)

// snippetTail is the second half of a long buffer as fasthttp quotes it
// ("...%q"): its first line may be the cut end of any header, a secret's
// too, so all of it goes.
var snippetTail = regexp.MustCompile(`(\.\.\.")(?:[^\\"]|\\[^rn])*`)

// Redact returns msg, a log line that may quote the raw bytes of a
// request head, with the values of the headers that carry credentials
// (Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key,
// X-Auth-Token) replaced by Redacted, as are the header fasthttp names as
// invalid (value or key, without its name) and the partial first line of
// a quoted buffer's tail.
func Redact(msg string) string {
	msg = invalidHeader.ReplaceAllString(msg, "${1}"+Redacted)
	msg = credential.ReplaceAllString(msg, "${1} "+Redacted)
	return snippetTail.ReplaceAllString(msg, "${1}"+Redacted)
}
