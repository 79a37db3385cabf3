package template

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest template, in bytes: far more than any topic or
// subject needs, and a bound on the memory every sample's expansion costs.
const MaxLen = 1024

// Kind says what a [Part] of a template is.
type Kind uint8

// The kinds of part.
const (
	Literal Kind = iota // literal text
	Source              // the placeholder {source}
	Point               // the placeholder {point}
)

// Part is literal text or a placeholder.
type Part struct {
	Kind Kind
	Text string // for Literal
}

// Syntax is what a protocol adds to the template grammar.
type Syntax struct {
	// What names the template in errors, e.g. "topic template".
	What string
	// Check, when set, looks at the whole template, once it is known to
	// be non-empty valid UTF-8 and before its placeholders are parsed, and
	// returns an error for what the protocol forbids in it.
	Check func(s string) error
	// Escape appends a source or point name to dst, replacing what the
	// protocol does not allow there. first reports whether the name
	// begins the expansion.
	Escape func(dst []byte, name string, first bool) []byte
}

// Template is a parsed template.
type Template struct {
	parts  []Part
	escape func(dst []byte, name string, first bool) []byte
}

// Parse parses s under syn. It rejects an empty template, one longer than
// [MaxLen] bytes (the error does not quote it), invalid UTF-8,
// what syn.Check rejects, unknown placeholders and unbalanced braces; each
// error quotes the template and gives the byte offset of the problem.
func Parse(s string, syn Syntax) (Template, error) {
	t := Template{escape: syn.Escape}
	if s == "" {
		return t, errors.New("empty " + syn.What)
	}
	if len(s) > MaxLen {
		return t, fmt.Errorf("%s is %d bytes, longer than %d", syn.What, len(s), MaxLen)
	}
	if !utf8.ValidString(s) {
		return t, fmt.Errorf("%s %q is not valid UTF-8", syn.What, s)
	}
	if syn.Check != nil {
		if err := syn.Check(s); err != nil {
			return t, err
		}
	}
	rest := s
	off := 0
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		closing := strings.IndexByte(rest, '}')
		if closing >= 0 && (open < 0 || closing < open) {
			return t, fmt.Errorf("%s %q: '}' at offset %d without '{'", syn.What, s, off+closing)
		}
		if open < 0 {
			t.parts = append(t.parts, Part{Kind: Literal, Text: rest})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, Part{Kind: Literal, Text: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return t, fmt.Errorf("%s %q: '{' at offset %d is not closed", syn.What, s, off+open)
		}
		name := rest[open+1 : open+end]
		switch name {
		case "source":
			t.parts = append(t.parts, Part{Kind: Source})
		case "point":
			t.parts = append(t.parts, Part{Kind: Point})
		default:
			return t, fmt.Errorf("%s %q: unknown placeholder {%s} at offset %d (known: {source}, {point})", syn.What, s, name, off+open)
		}
		off += open + end + 1
		rest = rest[open+end+1:]
	}
	return t, nil
}

// Parts returns the parts of t in order. The caller must not change them.
func (t Template) Parts() []Part { return t.parts }

// Append appends the expansion of t for a sample of source and point to
// dst, each name put in by the Syntax's Escape (as it is when Escape is
// nil).
func (t Template) Append(dst []byte, source, point string) []byte {
	for i, p := range t.parts {
		var name string
		switch p.Kind {
		case Literal:
			dst = append(dst, p.Text...)
			continue
		case Source:
			name = source
		case Point:
			name = point
		}
		if t.escape == nil {
			dst = append(dst, name...)
		} else {
			dst = t.escape(dst, name, i == 0)
		}
	}
	return dst
}

// CacheSize bounds a [Cache]: a bridge with more distinct source and point
// pairs than this expands names again after the cache is emptied.
const CacheSize = 4096

// Cache remembers the expansions of a template by source and point, so that
// a sink does not expand the same names for every sample. It holds at most
// [CacheSize] entries and is emptied when full. A Cache is not safe for
// concurrent use: a sink uses it from Write, whose calls do not overlap.
type Cache struct {
	t Template
	m map[[2]string]string
}

// NewCache returns an empty Cache of t's expansions.
func NewCache(t Template) *Cache {
	return &Cache{t: t, m: make(map[[2]string]string)}
}

// Get returns the expansion of the template for source and point, as
// [Template.Append] makes it.
func (c *Cache) Get(source, point string) string {
	k := [2]string{source, point}
	if s, ok := c.m[k]; ok {
		return s
	}
	s := string(c.t.Append(nil, source, point))
	if len(c.m) >= CacheSize {
		clear(c.m)
	}
	c.m[k] = s
	return s
}
