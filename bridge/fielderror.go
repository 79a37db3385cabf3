package bridge

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is one problem with one setting, as returned by the Validate
// methods of this module's configuration types (bridge.SinkOptions,
// bridge.Retry, modbus.ClientConfig, opcua.Config, each sink's Config,
// spool.Options). Path is the setting's key path relative to the value that
// was validated, in the keys of the YAML configuration: "retry.initial",
// "points[3].address". A loader walks the errors with [FieldErrors], prefixes
// the path of the enclosing value and maps the path to a file line; nobody
// needs to recover a field from an error's text.
type FieldError struct {
	Path string // key path, relative to the validated value; "" for the value itself
	Msg  string // what is wrong, for a person: "2ms is below the minimum 10ms"
	Hint string // optional: what to write instead ("did you mean ...?")
}

// Error returns "path: msg" (and the hint in parentheses).
func (e *FieldError) Error() string {
	s := e.Msg
	if e.Path != "" {
		s = e.Path + ": " + s
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// FieldErrorf returns a *FieldError for path with a formatted message.
func FieldErrorf(path, format string, args ...any) error {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// FieldErrors returns every *FieldError in err's tree (errors.Join trees, and
// wrappers such as fmt.Errorf("mqtt: %w", joined), whatever their depth), in
// order. An error in the tree that holds no field error is returned as a
// field error with an empty path and its text as the message.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			out = append(out, &FieldError{Msg: err.Error()})
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		default:
			// A type whose As finds a field error without unwrapping.
			out = append(out, fe)
		}
	}
	walk(err)
	return out
}

// PrefixFields returns err with every field error's path put under prefix
// ("retry" + "initial" = "retry.initial"; "points[2]" + "" = "points[2]"). A
// path that starts with "[" is appended without a dot. It returns nil for a
// nil err, and the field errors joined otherwise.
func PrefixFields(prefix string, err error) error {
	if err == nil {
		return nil
	}
	fes := FieldErrors(err)
	errs := make([]error, len(fes))
	for i, fe := range fes {
		c := *fe
		c.Path = JoinPath(prefix, fe.Path)
		errs[i] = &c
	}
	return errors.Join(errs...)
}

// JoinPath joins two key paths: JoinPath("sinks[0]", "retry.max") is
// "sinks[0].retry.max"; JoinPath("points", "[3]") is "points[3]".
func JoinPath(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case strings.HasPrefix(path, "["):
		return prefix + path
	}
	return prefix + "." + path
}
