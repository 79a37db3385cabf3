// Package limits checks numeric settings against their documented ranges
// and fills in their defaults, the same way for every sink, so that a value
// that would fail or hang at run time (a 1000h timeout, a queue of 10^12) is
// refused by validation, naming the setting.
package limits

import (
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Duration is one duration setting: its YAML key, where it is, its default
// (used for 0) and its range.
type Duration struct {
	Key      string
	P        *time.Duration
	Def      time.Duration
	Min, Max time.Duration
}

// Durations applies the default of each setting that is 0 and returns a
// *bridge.FieldError for each that is outside its range.
func Durations(ds ...Duration) []error {
	var errs []error
	for _, d := range ds {
		switch v := *d.P; {
		case v == 0:
			*d.P = d.Def
		case v < d.Min || v > d.Max:
			errs = append(errs, &bridge.FieldError{Path: d.Key, Msg: v.String() + " is outside " + d.Min.String() + " to " + d.Max.String()})
		}
	}
	return errs
}

// Int applies def to *p when it is 0 and returns a *bridge.FieldError when
// *p is outside min to max.
func Int(key string, p *int, def, min, max int) error {
	switch v := *p; {
	case v == 0:
		*p = def
	case v < min || v > max:
		return bridge.FieldErrorf(key, "%d is outside %d to %d", v, min, max)
	}
	return nil
}

// AckTimeout is the ack_timeout setting of the broker sinks (mqtt, nats):
// how long a publish may wait for its acknowledgement. Default 10s, from
// [MinTimeout] to [MaxTimeout].
func AckTimeout(p *time.Duration) Duration {
	return Duration{Key: "ack_timeout", P: p, Def: 10 * time.Second, Min: MinTimeout, Max: MaxTimeout}
}

// ConnectTimeout is the connect_timeout setting of the broker sinks (mqtt,
// nats), with the sink's documented default, from [MinTimeout] to
// [MaxTimeout].
func ConnectTimeout(p *time.Duration, def time.Duration) Duration {
	return Duration{Key: "connect_timeout", P: p, Def: def, Min: MinTimeout, Max: MaxTimeout}
}

// The ranges shared by the sinks.
const (
	// MinTimeout and MaxTimeout bound request, acknowledgement and
	// connection timeouts: long enough for a slow link, short enough that
	// shutdown is not held up for hours.
	MinTimeout = 100 * time.Millisecond
	MaxTimeout = 10 * time.Minute
	// MaxTemplate is the longest topic or subject template, in bytes.
	MaxTemplate = 1024
)
