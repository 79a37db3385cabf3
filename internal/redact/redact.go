// Package redact hides the secrets a URL or endpoint may carry, so that it
// can be printed in errors, logs, -check output and metric labels.
//
// [URL] replaces the password of the user information ("u:PW@host") and
// every query value ("?api_key=K") by "xxxxx". It works on text, not on a
// parsed URL, so it also handles what url.Parse refuses (a bad escape, a
// bare "u:PW@host:9092" without scheme, a comma-separated server list). It
// errs on the side of hiding: in an ambiguous string (an '@' in a path or a
// query after a ':', a scheme-less host list with a password) it may hide
// more than the password, never less. A user name alone ("user@host") is
// kept, as is the fragment. The one limit: in a list of URLs with schemes,
// a password holding ",<scheme>://" is taken for the start of the next URL
// (no client could use such a list either).
//
// The functions are safe for concurrent use.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces each secret.
const Mask = "xxxxx"

// nextURL finds the commas that start another element of a list of URLs
// with schemes ("nats://a:4222,nats://b:4222").
var nextURL = regexp.MustCompile(`,\s*[A-Za-z][A-Za-z0-9+.\-]*://`)

// scheme matches the scheme at the start of a URL (RFC 3986 section 3.1).
var scheme = regexp.MustCompile(`^\s*[A-Za-z][A-Za-z0-9+.\-]*://`)

// URL returns s with the password in its user information and every query
// value replaced by [Mask]. s may be a URL, "host:port", "user:pw@host:port",
// or a comma-separated list of these. URL(URL(s)) == URL(s).
func URL(s string) string {
	if !strings.ContainsAny(s, "@?") {
		return s // nothing to hide: the common case, without allocating
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	if !scheme.MatchString(s) {
		// host:port, or a list of them: one element. In a list that
		// holds a password this hides the hosts between the first ':'
		// and the last '@' too, since a password may hold a comma.
		element(&b, s)
		return b.String()
	}
	// A list of URLs with schemes ("nats://a:4222,nats://u:p@b:4222") is
	// split where ",<scheme>://" starts a new element, before the first
	// '?' only, so that a comma in a query value stays in its element.
	head, tail := s, ""
	if q := strings.IndexByte(s, '?'); q >= 0 {
		head, tail = s[:q], s[q:]
	}
	from := 0
	for _, m := range nextURL.FindAllStringIndex(head, -1) {
		element(&b, head[from:m[0]])
		b.WriteByte(',')
		from = m[0] + 1
	}
	element(&b, head[from:]+tail)
	return b.String()
}

// element writes the redaction of one URL or host:port to b.
func element(b *strings.Builder, s string) {
	start := 0
	if m := scheme.FindStringIndex(s); m != nil {
		start = m[1]
	}
	b.WriteString(s[:start])
	rest := s[start:]
	// The user information ends at the last '@': a password may hold an
	// unescaped '@', '/', '?' or '#', and hiding too much is safe.
	inQuery := false
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		// A ':' after a '?' or '#' is in the query or fragment, not in
		// the user information.
		if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 && !strings.ContainsAny(rest[:colon], "?#") {
			b.WriteString(rest[:colon+1])
			if colon+1 < at {
				b.WriteString(Mask)
			}
			b.WriteString(rest[at : at+1])
			// An '@' in a query value ("?email=a@b") ends up here too:
			// then what follows it is query.
			inQuery = strings.IndexByte(rest[colon+1:at], '?') >= 0
			rest = rest[at+1:]
		}
	}
	q := -1
	if !inQuery {
		q = strings.IndexByte(rest, '?')
		if h := strings.IndexByte(rest, '#'); q < 0 || h >= 0 && h < q {
			b.WriteString(rest)
			return
		}
	}
	b.WriteString(rest[:q+1])
	query, frag := rest[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	for i := 0; i < len(query); {
		j := strings.IndexAny(query[i:], "&;")
		if j < 0 {
			j = len(query)
		} else {
			j += i
		}
		part := query[i:j]
		if eq := strings.IndexByte(part, '='); eq >= 0 {
			b.WriteString(part[:eq+1])
			if eq+1 < len(part) {
				b.WriteString(Mask)
			}
		} else if part != "" {
			b.WriteString(Mask) // a bare value ("?TOKEN")
		}
		if j < len(query) {
			b.WriteByte(query[j])
		}
		i = j + 1
	}
	b.WriteString(frag)
}

// Error returns err with the URL of a *url.Error (the errors of net/http's
// client: `Post "https://h/x?api_key=K": dial tcp ...`) redacted by [URL].
// The result wraps the same cause, so errors.Is, errors.As and the
// Timeout method still work. Other errors are returned as they are.
func Error(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) || ue != err {
		return err
	}
	return &url.Error{Op: ue.Op, URL: URL(ue.URL), Err: ue.Err}
}

// ParseError returns why url.Parse refused raw, for a message that already
// shows the URL redacted: the cause of the *url.Error (which quotes the URL
// whole) with any copy of raw in it redacted by [URL].
func ParseError(err error, raw string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if err == nil {
		return ""
	}
	return strings.ReplaceAll(err.Error(), raw, URL(raw))
}
