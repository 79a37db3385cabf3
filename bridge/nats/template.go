package nats

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	tmpl "github.com/m2mbridge/m2mbridge/internal/template"
)

// DefaultSubject is the subject template used when Config.Subject is empty.
const DefaultSubject = "m2m.{source}.{point}"

// DefaultBatchSubject is the subject template used when Config.Subject is
// empty and Config.Layout is [LayoutBatch].
const DefaultBatchSubject = "m2m.{source}"

// The layouts (Config.Layout).
const (
	LayoutSample = "sample"
	LayoutBatch  = "batch"
)

// hasPoint reports whether t holds {point}.
func (t template) hasPoint() bool {
	for _, p := range t.Parts() {
		if p.Kind == tmpl.Point {
			return true
		}
	}
	return false
}

// subjectSyntax is what NATS adds to the template grammar.
var subjectSyntax = tmpl.Syntax{
	What: "subject template",
	Check: func(s string) error {
		if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
			return fmt.Errorf("subject template %q holds whitespace at offset %d", s, i)
		}
		if i := strings.IndexAny(s, "*>"); i >= 0 {
			return fmt.Errorf("subject template %q holds the wildcard %q at offset %d: a publish subject cannot", s, s[i], i)
		}
		return nil
	},
	Escape: func(dst []byte, s string, _ bool) []byte { return appendToken(dst, s) },
}

// template is a parsed subject template.
type template struct {
	tmpl.Template
}

// parseTemplate parses a subject template made of literal text and the
// placeholders {source} and {point}. The template must give a valid
// publish subject for every sample: no empty token, no wildcard, no
// whitespace, no unknown placeholder.
func parseTemplate(s string) (template, error) {
	pt, err := tmpl.Parse(s, subjectSyntax)
	t := template{pt}
	if err != nil {
		return t, err
	}
	// Placeholders never expand to an empty token (see appendToken), so an
	// empty token can only come from the literal text.
	for i, tok := range strings.Split(t.wildcard(), ".") {
		if tok == "" {
			return t, fmt.Errorf("subject template %q: token %d is empty (leading, trailing or doubled '.')", s, i+1)
		}
	}
	return t, nil
}

// wildcard returns the subject filter that matches every subject of the
// template: each token holding a placeholder becomes '*'. Placeholders
// expand within one token, so this is exact.
func (t template) wildcard() string {
	var b strings.Builder
	for _, p := range t.Parts() {
		if p.Kind == tmpl.Literal {
			b.WriteString(p.Text)
		} else {
			b.WriteString("\x00")
		}
	}
	toks := strings.Split(b.String(), ".")
	for i, tok := range toks {
		if strings.Contains(tok, "\x00") {
			toks[i] = "*"
		}
	}
	return strings.Join(toks, ".")
}

// appendSubject appends the subject of a sample to dst.
func (t template) appendSubject(dst []byte, source, point string) []byte {
	return t.Append(dst, source, point)
}

// appendToken appends a source or point name to a subject, replacing what
// NATS does not allow inside a token by '_': the token separator '.', the
// wildcards '*' and '>', whitespace (Unicode White_Space, which includes
// the CR and LF of the protocol's line ends) and other control characters,
// and each byte of invalid UTF-8. An empty name becomes "_", since a
// subject may not have an empty token.
func appendToken(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, '_')
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == '.' || c == '*' || c == '>' || c <= ' ' || c == 0x7f {
				c = '_'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || unicode.IsSpace(r) || unicode.IsControl(r) {
			dst = append(dst, '_')
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}
