// Package cfgcheck holds what the Validate methods and constructors of the
// sinks (and the "did you mean" of opcua and the gateway, [Suggest]) share beyond ranges ([limits]) and TLS files ([tlsfiles]): the error a
// constructor returns ([Wrap]), unknown enum values with a "did you mean"
// hint ([Enum]), and the rule for empty secrets ([Secret]). Every error is
// a *bridge.FieldError whose path is the setting's YAML key.
//
// Its functions keep no state and may be called from any goroutine.
package cfgcheck

import (
	"fmt"
	"strings"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Wrap returns err as a constructor returns it: its text is each of err's
// errors on its own line, each after "pkg: " ("mqtt: qos: 3 is not 0, 1 or
// 2"), and [bridge.FieldErrors] of the result walks err's field errors with
// their paths unchanged (fmt.Errorf("%w") around an errors.Join would hide
// all but the first). Wrap returns nil for a nil err.
func Wrap(pkg string, err error) error {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	return &wrapped{pkg: pkg, errs: errs}
}

type wrapped struct {
	pkg  string
	errs []error
}

func (w *wrapped) Error() string {
	var b strings.Builder
	for i, e := range w.errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(w.pkg)
		b.WriteString(": ")
		b.WriteString(e.Error())
	}
	return b.String()
}

func (w *wrapped) Unwrap() []error { return w.errs }

// Enum returns the error for got, a value of the setting at path that is
// none of names: `unknown <what> "got": want a, b or c`, with the hint
// `did you mean "b"?` when one name is close to got (the same but for case
// and separators, or a few letters apart). Path is "" for an
// UnmarshalText method, whose caller knows the key.
func Enum(path, what, got string, names ...string) *bridge.FieldError {
	fe := &bridge.FieldError{Path: path, Msg: fmt.Sprintf("unknown %s %q: want %s", what, got, list(names))}
	if s := Suggest(got, names...); s != "" {
		fe.Hint = fmt.Sprintf("did you mean %q?", s)
	}
	return fe
}

// list returns "a", "a or b", "a, b or c".
func list(names []string) string {
	switch len(names) {
	case 0:
		return "nothing"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Suggest returns the one name closest to got, or "" when none is close or
// two are equally close. Case and the separators '-', '_', '.' and ' ' do
// not count; otherwise a name is close when at most a third of its letters
// (at least one) must be changed, added, removed or swapped with a
// neighbour to make it.
func Suggest(got string, names ...string) string {
	g := fold(got)
	if g == "" {
		return ""
	}
	best, bestD, ties := "", -1, 0
	for _, n := range names {
		f := fold(n)
		d := distance(g, f)
		if d > max(1, len(f)/3) {
			continue
		}
		switch {
		case bestD < 0 || d < bestD:
			best, bestD, ties = n, d, 0
		case d == bestD:
			ties++
		}
	}
	if ties > 0 {
		return ""
	}
	return best
}

func fold(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(s)))
}

// distance is the edit distance between a and b, in bytes, counting a
// change, an insertion, a deletion and the swap of two neighbours as one
// edit each (optimal string alignment).
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Secret returns an error at key ("password") when user is set and secret
// is empty, for a protocol that needs a secret with the user name. An empty
// secret is what a configuration that names an environment variable or a
// file that is set but empty gives, so it is refused rather than sent: the
// server would answer with an authentication failure at run time, which a
// check cannot see. It returns nil otherwise.
func Secret(key, userKey, user, secret string) error {
	if user == "" || secret != "" {
		return nil
	}
	return &bridge.FieldError{Path: key, Msg: "empty, but " + userKey + " is set",
		Hint: key + "_env or " + key + "_file must name a variable or file that holds the " + key + "; one that is set but empty gives an empty " + key}
}
