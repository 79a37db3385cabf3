package mqtt

import (
	"fmt"
	"strings"
	"unicode/utf8"

	tmpl "github.com/m2mbridge/m2mbridge/internal/template"
)

// DefaultTopic is the topic template used when Config.Topic is empty.
const DefaultTopic = "m2m/{source}/{point}"

// DefaultBatchTopic is the topic template used when Config.Topic is empty
// and Config.Layout is [LayoutBatch].
const DefaultBatchTopic = "m2m/{source}"

// The layouts (Config.Layout) and compressions (Config.Compression).
const (
	LayoutSample    = "sample"
	LayoutBatch     = "batch"
	CompressionNone = "none"
	CompressionZstd = "zstd"
)

// Content types of the batch layout's messages (MQTT 5 Content Type).
const (
	ContentTypeJSON     = "application/json"
	ContentTypeJSONZstd = "application/json+zstd"
)

// maxTopicLen is the longest topic name MQTT can carry: a UTF-8 string is
// prefixed by a two-byte length (MQTT 3.1.1 section 1.5.3, MQTT 5 section
// 1.5.4).
const maxTopicLen = 65535

// topicSyntax is what MQTT adds to the template grammar.
var topicSyntax = tmpl.Syntax{
	What: "topic template",
	Check: func(s string) error {
		if i := strings.IndexAny(s, "+#\x00"); i >= 0 {
			return fmt.Errorf("topic template %q holds %q at offset %d: wildcards and NUL are not allowed in a topic name", s, s[i], i)
		}
		return nil
	},
	Escape: appendLevel,
}

// template is a parsed topic template.
type template struct {
	tmpl.Template
}

// parseTemplate parses a topic template made of literal text and the
// placeholders {source} and {point}. It rejects unknown placeholders,
// unbalanced braces, the wildcards '+' and '#', U+0000 and invalid UTF-8:
// a template must give a valid topic name for every sample.
func parseTemplate(s string) (template, error) {
	t, err := tmpl.Parse(s, topicSyntax)
	return template{t}, err
}

// literal reports whether t is literal text alone, with no placeholder.
func (t template) literal() bool {
	p := t.Parts()
	return len(p) == 1 && p[0].Kind == tmpl.Literal
}

// hasPoint reports whether t holds {point}.
func (t template) hasPoint() bool {
	for _, p := range t.Parts() {
		if p.Kind == tmpl.Point {
			return true
		}
	}
	return false
}

// appendTopic appends the topic of a sample to dst.
func (t template) appendTopic(dst []byte, source, point string) []byte {
	return t.Append(dst, source, point)
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

// mayCollide reports whether t and u can give the same topic name for some
// values of their placeholders (each value taken independently, as two
// different sources would give). A value put in place of a placeholder
// holds no '/' (appendLevel), so the topics are compared level by level: a
// literal level matches only itself, a level with placeholders matches any
// text that begins with its text before the first placeholder and ends with
// its text after the last. The answer errs on the side of a collision.
func mayCollide(t, u template) bool {
	a, b := t.levels(), u.levels()
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mayMatch(b[i]) {
			return false
		}
	}
	return true
}

// level is one level of a topic template: literal text, or, when wild,
// any text between prefix and suffix.
type level struct {
	wild           bool
	prefix, suffix string // prefix is the whole level when !wild
}

func (l level) mayMatch(m level) bool {
	switch {
	case !l.wild && !m.wild:
		return l.prefix == m.prefix
	case !l.wild:
		return m.matches(l.prefix)
	case !m.wild:
		return l.matches(m.prefix)
	}
	return (strings.HasPrefix(l.prefix, m.prefix) || strings.HasPrefix(m.prefix, l.prefix)) &&
		(strings.HasSuffix(l.suffix, m.suffix) || strings.HasSuffix(m.suffix, l.suffix))
}

// matches reports whether the wild level l can give the text s.
func (l level) matches(s string) bool {
	return len(s) >= len(l.prefix)+len(l.suffix) && strings.HasPrefix(s, l.prefix) && strings.HasSuffix(s, l.suffix)
}

// levels splits t at '/'.
func (t template) levels() []level {
	// NUL cannot be in a template: it marks the placeholders.
	var sb strings.Builder
	for _, p := range t.Parts() {
		if p.Kind == tmpl.Literal {
			sb.WriteString(p.Text)
		} else {
			sb.WriteByte(0)
		}
	}
	var out []level
	for _, s := range strings.Split(sb.String(), "/") {
		first, last := strings.IndexByte(s, 0), strings.LastIndexByte(s, 0)
		if first < 0 {
			out = append(out, level{prefix: s})
			continue
		}
		out = append(out, level{wild: true, prefix: s[:first], suffix: s[last+1:]})
	}
	return out
}

// hasSource reports whether t holds {source}.
func (t template) hasSource() bool {
	for _, p := range t.Parts() {
		if p.Kind == tmpl.Source {
			return true
		}
	}
	return false
}
