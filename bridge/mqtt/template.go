package mqtt

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// DefaultTopic is the topic template used when Config.Topic is empty.
const DefaultTopic = "m2m/{source}/{point}"

// maxTopicLen is the longest topic name MQTT can carry: a UTF-8 string is
// prefixed by a two-byte length (MQTT 3.1.1 section 1.5.3, MQTT 5 section
// 1.5.4).
const maxTopicLen = 65535

// Placeholders a template may hold.
const (
	partLiteral = iota
	partSource
	partPoint
)

type part struct {
	kind int
	text string // for partLiteral
}

// template is a parsed topic template.
type template struct {
	parts []part
}

// parseTemplate parses a topic template made of literal text and the
// placeholders {source} and {point}. It rejects unknown placeholders,
// unbalanced braces, the wildcards '+' and '#', U+0000 and invalid UTF-8:
// a template must give a valid topic name for every sample.
func parseTemplate(s string) (template, error) {
	var t template
	if s == "" {
		return t, errors.New("empty topic template")
	}
	if !utf8.ValidString(s) {
		return t, fmt.Errorf("topic template %q is not valid UTF-8", s)
	}
	if i := strings.IndexAny(s, "+#\x00"); i >= 0 {
		return t, fmt.Errorf("topic template %q holds %q at offset %d: wildcards and NUL are not allowed in a topic name", s, s[i], i)
	}
	rest := s
	off := 0
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		closing := strings.IndexByte(rest, '}')
		if closing >= 0 && (open < 0 || closing < open) {
			return t, fmt.Errorf("topic template %q: '}' at offset %d without '{'", s, off+closing)
		}
		if open < 0 {
			t.parts = append(t.parts, part{kind: partLiteral, text: rest})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, part{kind: partLiteral, text: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return t, fmt.Errorf("topic template %q: '{' at offset %d is not closed", s, off+open)
		}
		name := rest[open+1 : open+end]
		switch name {
		case "source":
			t.parts = append(t.parts, part{kind: partSource})
		case "point":
			t.parts = append(t.parts, part{kind: partPoint})
		default:
			return t, fmt.Errorf("topic template %q: unknown placeholder {%s} at offset %d (known: {source}, {point})", s, name, off+open)
		}
		off += open + end + 1
		rest = rest[open+end+1:]
	}
	return t, nil
}

// appendTopic appends the topic of a sample to dst.
func (t template) appendTopic(dst []byte, source, point string) []byte {
	for i, p := range t.parts {
		switch p.kind {
		case partLiteral:
			dst = append(dst, p.text...)
		case partSource:
			dst = appendLevel(dst, source, i == 0)
		case partPoint:
			dst = appendLevel(dst, point, i == 0)
		}
	}
	return dst
}

// appendLevel appends a source or point name to a topic, replacing what MQTT
// does not allow there by '_':
//   - the wildcards '+' and '#' (MQTT 3.1.1 section 4.7.1: not allowed in a
//     topic name), and '/' so that a name stays one topic level;
//   - U+0000 (section 1.5.3: must not appear in a UTF-8 string);
//   - each byte of invalid UTF-8;
//   - a '$' when the name starts the topic, since topics beginning with '$'
//     are reserved for the server (section 4.7.2).
func appendLevel(dst []byte, s string, first bool) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '+' || c == '#' || c == '/' || c == 0:
				c = '_'
			case c == '$' && first && i == 0:
				c = '_'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, '_')
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}
