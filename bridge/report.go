package bridge

import (
	"errors"
	"math"
	"slices"
	"time"
)

// Report configures report by exception for a source's points: which
// samples of a point go on to the sinks and which are suppressed because
// they say nothing new. It is set per source ([SourceOptions].Report) with
// per-point overrides ([SourceOptions].PointReport), and applied by the
// Bridge between the source's Emit and the sinks, the same for every kind of
// source.
//
// A sample of a point is passed on when it is the first of that point since
// the Bridge started or since the source's health ([HealthReporter]) last
// came up (a reconnect, a new Run), when its quality, status code or reason differs from
// the last reported sample's (so a Bad → Good transition after a reconnect
// always passes), when its value's kind changed, when a string or bool
// changed, when a number moved beyond the rule below from the last
// *reported* value (not the last sample, so a slow drift is reported once it
// adds up), or when the heartbeat is due. Every other sample is suppressed
// and counted in [SourceStats].Suppressed.
//
// The zero Report passes every sample. At most one of Deadband,
// DeadbandPercent and OnChange is set.
type Report struct {
	// Deadband passes a number that differs from the last reported value
	// by more than this, in the point's engineering units; a difference
	// exactly equal to it is suppressed (OPC UA Part 4, 7.22.2, the
	// absolute DataChangeFilter deadband). 0 (off) or a finite number
	// above 0.
	Deadband float64 `yaml:"deadband"`
	// DeadbandPercent passes a number that differs from the last reported
	// value by more than this percentage of Range, or, without a Range, of
	// the last reported value's magnitude. Without a Range, a last reported
	// value of 0 makes the band 0: any change passes. 0 (off) or above 0 up
	// to 100.
	DeadbandPercent float64 `yaml:"deadband_percent"`
	// Range is the span of the point's values (its EURange high minus low,
	// a meter's full scale) that DeadbandPercent is a percentage of; only
	// with DeadbandPercent. 0 (use the last reported value) or a finite
	// number above 0.
	Range float64 `yaml:"range"`
	// OnChange passes any change of value.
	OnChange bool `yaml:"on_change"`
	// Heartbeat passes a point's sample, changed or not, when this long has
	// passed since the point's last reported sample, so that a consumer can
	// tell "unchanged" from "dead". It does not make samples up: the first
	// sample after the heartbeat is due passes. Measured on the Bridge's
	// clock when the sample is emitted, not on Sample.Time. 0 (none) or
	// MinHeartbeat to MaxHeartbeat; only with a deadband or OnChange.
	Heartbeat time.Duration `yaml:"heartbeat"`
}

// Ranges of the report settings, and the bound on report by exception's
// state.
const (
	MinHeartbeat = time.Second
	MaxHeartbeat = 24 * time.Hour
	// MaxReportPoints is how many points (source and point names) report
	// by exception tracks per source, at roughly 150 bytes each. Samples of
	// further points pass unfiltered and are counted in
	// [SourceStats].Unfiltered.
	MaxReportPoints = 100_000
)

// active reports whether r filters at all.
func (r Report) active() bool { return r.Deadband != 0 || r.DeadbandPercent != 0 || r.OnChange }

// Merge returns the settings of a point whose own settings are p under the
// source default r: p's rule (Deadband, DeadbandPercent or OnChange)
// replaces r's when p sets one; p's Range and Heartbeat replace r's when
// set. r's Range is kept only when the resulting rule is DeadbandPercent. A
// point's settings cannot switch off a rule of the default.
func (r Report) Merge(p Report) Report {
	out := r
	if p.active() {
		out.Deadband, out.DeadbandPercent, out.OnChange = p.Deadband, p.DeadbandPercent, p.OnChange
	}
	if p.Range != 0 {
		out.Range = p.Range
	} else if out.DeadbandPercent == 0 {
		out.Range = 0
	}
	if p.Heartbeat != 0 {
		out.Heartbeat = p.Heartbeat
	}
	return out
}

// Validate checks the settings and returns every problem as a
// [*FieldError] whose path is the YAML key ("deadband", "heartbeat").
func (r Report) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, FieldErrorf(path, format, args...)) }
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if r.Deadband < 0 || !finite(r.Deadband) {
		bad("deadband", "%v is out of range: want 0 (off) or a finite number above 0, in the point's units", r.Deadband)
	}
	if r.DeadbandPercent < 0 || r.DeadbandPercent > 100 || !finite(r.DeadbandPercent) {
		bad("deadband_percent", "%v is out of range: want 0 (off) or above 0 up to 100", r.DeadbandPercent)
	}
	if r.Range < 0 || !finite(r.Range) {
		bad("range", "%v is out of range: want 0 (of the last reported value) or a finite number above 0", r.Range)
	} else if r.Range != 0 && r.DeadbandPercent == 0 {
		bad("range", "is only used with deadband_percent")
	}
	rules := 0
	for _, set := range []bool{r.Deadband != 0, r.DeadbandPercent != 0, r.OnChange} {
		if set {
			rules++
		}
	}
	if rules > 1 {
		switch {
		case r.OnChange:
			bad("on_change", "cannot be combined with deadband or deadband_percent: choose one")
		default:
			bad("deadband_percent", "cannot be combined with deadband: choose one")
		}
	}
	if r.Heartbeat != 0 {
		if r.Heartbeat < MinHeartbeat || r.Heartbeat > MaxHeartbeat {
			bad("heartbeat", "%v is out of range: want 0 (none) or %v to %v", r.Heartbeat, MinHeartbeat, MaxHeartbeat)
		} else if rules == 0 {
			bad("heartbeat", "has no effect without deadband, deadband_percent or on_change: every sample is reported")
		}
	}
	return errors.Join(errs...)
}

// validateReports checks a source's default and, when the default is
// valid, each point's settings as merged with it.
func validateReports(def Report, points map[string]Report) error {
	if err := def.Validate(); err != nil {
		return PrefixFields("report", err)
	}
	var errs []error
	names := make([]string, 0, len(points))
	for name := range points {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := "point_report[" + name + "]"
		if name == "" {
			errs = append(errs, FieldErrorf(path, "empty point name"))
			continue
		}
		if err := def.Merge(points[name]).Validate(); err != nil {
			errs = append(errs, PrefixFields(path, err))
		}
	}
	return errors.Join(errs...)
}

// reportRule is a Report compiled for the filter.
type reportRule struct {
	onChange  bool
	deadband  float64 // absolute band, when pct is 0
	pct       float64 // DeadbandPercent/100
	span      float64 // Range, or 0
	heartbeat int64   // nanoseconds, or 0
}

func compileReport(r Report) reportRule {
	return reportRule{onChange: r.OnChange, deadband: r.Deadband, pct: r.DeadbandPercent / 100, span: r.Range, heartbeat: int64(r.Heartbeat)}
}

// changed reports whether v differs from the last reported value last by
// enough to be reported under the rule.
func (r *reportRule) changed(last, v Value) bool {
	if v.Equal(last) {
		return false
	}
	if !numeric(v.kind) || !numeric(last.kind) || r.onChange {
		return true // strings, bools, none, and kind changes report on change
	}
	a, b := last.Float(), v.Float()
	if math.IsNaN(a) || math.IsNaN(b) {
		return true // a number to NaN or back: not equal, so changed
	}
	band := r.deadband
	if r.pct != 0 {
		if r.span != 0 {
			band = r.pct * r.span
		} else {
			band = r.pct * math.Abs(a)
		}
	}
	return math.Abs(b-a) > band // +Inf to -Inf gives +Inf: reported
}

func numeric(k Kind) bool { return k == KindFloat || k == KindInt || k == KindUint }

type reportKey struct{ source, point string }

// pointState is what the filter remembers of a point's last reported
// sample.
type pointState struct {
	rule    reportRule
	last    Value
	quality Quality
	code    uint32
	reason  string
	at      int64 // when it was reported, ns since the filter's epoch
}

// reportFilter is one source's report by exception. It is used under the
// source runner's emitMu.
type reportFilter struct {
	def    reportRule
	hasDef bool
	points map[string]reportRule // per-point settings, merged with the default
	epoch  time.Time
	index  map[reportKey]int32
	states []pointState
	max    int
}

// newReportFilter returns the filter for the settings, or nil when they
// filter nothing.
func newReportFilter(def Report, points map[string]Report) *reportFilter {
	f := &reportFilter{def: compileReport(def), hasDef: def.active(), epoch: time.Now(), index: make(map[reportKey]int32), max: MaxReportPoints}
	for name, p := range points {
		if m := def.Merge(p); m.active() {
			if f.points == nil {
				f.points = make(map[string]reportRule, len(points))
			}
			f.points[name] = compileReport(m)
		}
	}
	if !f.hasDef && f.points == nil {
		return nil
	}
	return f
}

// reset forgets every point, keeping the memory: the next sample of each
// is its first.
func (f *reportFilter) reset() {
	clear(f.index)
	f.states = f.states[:0]
}

// now returns the filter's clock, read once per batch.
func (f *reportFilter) now() int64 { return int64(time.Since(f.epoch)) }

// pass decides whether s is reported, remembering it when it is. unfiltered
// is true when s passed only because the filter tracks MaxReportPoints
// points already.
func (f *reportFilter) pass(s *Sample, now int64) (ok, unfiltered bool) {
	k := reportKey{s.Source, s.Point}
	i, found := f.index[k]
	if !found {
		rule, has := f.points[s.Point]
		if !has {
			if !f.hasDef {
				return true, false // a point without a rule: every sample
			}
			rule = f.def
		}
		if len(f.states) >= f.max {
			return true, true
		}
		f.index[k] = int32(len(f.states))
		f.states = append(f.states, pointState{rule: rule, last: s.Value, quality: s.Quality, code: s.Code, reason: s.Reason, at: now})
		return true, false // the first sample of a point
	}
	st := &f.states[i]
	switch {
	case s.Quality != st.quality || s.Code != st.code || s.Reason != st.reason:
	case st.rule.heartbeat != 0 && now-st.at >= st.rule.heartbeat:
	case st.rule.changed(st.last, s.Value):
	default:
		return false, false
	}
	st.last, st.quality, st.code, st.reason, st.at = s.Value, s.Quality, s.Code, s.Reason, now
	return true, false
}
