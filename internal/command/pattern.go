package command

import (
	"fmt"
	"strings"

	tmpl "github.com/m2mbridge/m2mbridge/internal/template"
)

// Pattern is a command topic or subject template whose {source} and {point}
// each fill one whole level (MQTT) or token (NATS), so that one wildcard
// subscription receives every command and the names are read back from the
// topic a command came on.
type Pattern struct {
	sep      byte
	levels   []string // literal levels; "" where a placeholder is
	src, pt  int      // the levels of {source} and {point}
	wildcard string
}

// NewPattern checks t for use as a command template whose levels are
// separated by sep, and returns its Pattern; wild is the one-level
// wildcard ("+" for MQTT, "*" for NATS).
func NewPattern(t tmpl.Template, sep byte, wild string) (*Pattern, error) {
	var b strings.Builder
	for _, p := range t.Parts() {
		switch p.Kind {
		case tmpl.Literal:
			b.WriteString(p.Text)
		case tmpl.Source:
			b.WriteString("\x00s")
		case tmpl.Point:
			b.WriteString("\x00p")
		}
	}
	pat := &Pattern{sep: sep, src: -1, pt: -1}
	levels := strings.Split(b.String(), string(sep))
	w := make([]string, len(levels))
	for i, l := range levels {
		switch {
		case l == "\x00s" && pat.src < 0:
			pat.src = i
			w[i] = wild
			l = ""
		case l == "\x00p" && pat.pt < 0:
			pat.pt = i
			w[i] = wild
			l = ""
		case strings.Contains(l, "\x00"):
			return nil, fmt.Errorf("{source} and {point} must each be a whole level, once (e.g. m2m/cmd/{source}/{point})")
		default:
			w[i] = l
		}
		pat.levels = append(pat.levels, l)
	}
	if pat.src < 0 || pat.pt < 0 {
		return nil, fmt.Errorf("needs both {source} and {point}, each a whole level (e.g. m2m/cmd/{source}/{point})")
	}
	pat.wildcard = strings.Join(w, string(sep))
	return pat, nil
}

// Filter returns the subscription that receives every command: the
// template with its placeholders turned into wildcards.
func (p *Pattern) Filter() string { return p.wildcard }

// Match returns the source and point of a topic the filter matched, and
// false for a topic of another shape. A name may be empty (the filter's
// wildcard matches an empty level): the write then refuses it, and the
// sender gets that answer. It never panics.
func (p *Pattern) Match(topic string) (source, point string, ok bool) {
	for i, lit := range p.levels {
		var level string
		j := strings.IndexByte(topic, p.sep)
		if i == len(p.levels)-1 {
			if j >= 0 {
				return "", "", false
			}
			level = topic
		} else {
			if j < 0 {
				return "", "", false
			}
			level, topic = topic[:j], topic[j+1:]
		}
		switch i {
		case p.src:
			source = level
		case p.pt:
			point = level
		default:
			if level != lit {
				return "", "", false
			}
		}
	}
	return source, point, true
}
