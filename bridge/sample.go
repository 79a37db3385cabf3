package bridge

import (
	"strconv"
	"time"
)

// Quality says how far a [Sample] can be trusted. The zero Quality is Good.
type Quality uint8

// The qualities of a sample, after OPC UA's severity classes (Part 4,
// 7.39 StatusCode: bits 30–31 are 00 Good, 01 Uncertain, 10 Bad).
const (
	Good Quality = iota
	Uncertain
	Bad
)

// String returns "good", "uncertain" or "bad", as in the JSON encoding.
func (q Quality) String() string {
	switch q {
	case Good:
		return "good"
	case Uncertain:
		return "uncertain"
	case Bad:
		return "bad"
	}
	return "quality(" + strconv.Itoa(int(q)) + ")"
}

// ParseQuality parses the JSON spelling of a Quality.
func ParseQuality(s string) (Quality, bool) {
	switch s {
	case "good":
		return Good, true
	case "uncertain":
		return Uncertain, true
	case "bad":
		return Bad, true
	}
	return 0, false
}

// Sample is one reading of one point of one source.
//
// A Sample is a plain value: copying it copies the reading, and nothing in it
// refers to memory a source will reuse (strings are immutable).
type Sample struct {
	// Source is the device or server the reading came from, as the user
	// named it ("meter1").
	Source string
	// Point is the point within the source ("voltage_l1").
	Point string
	// Value is the reading. A Bad sample may hold no value (KindNone).
	Value Value
	// Unit is the engineering unit as short text ("V", "kWh", "°C"), or ""
	// when unknown.
	Unit string
	// Time is when the value was measured: the device's source timestamp
	// where the protocol has one, else when the response arrived.
	Time time.Time
	// Quality is Good, Uncertain or Bad.
	Quality Quality
	// Reason says why a non-good sample is not good: a timeout, a Modbus
	// exception, an OPC UA status name. Empty for a Good sample.
	Reason string
	// Code is the protocol's own status code where there is one: the OPC UA
	// StatusCode, or the Modbus exception code. Zero when there is none.
	Code uint32
	// Seq is a per-source sequence number that lets a consumer of an
	// at-least-once stream drop duplicates. Zero means unset.
	Seq uint64
}

// BadSample returns a Bad sample of the given source and point at time t with the
// reason taken from err.
func BadSample(source, point string, t time.Time, err error) Sample {
	s := Sample{Source: source, Point: point, Time: t, Quality: Bad}
	if err != nil {
		s.Reason = err.Error()
	}
	return s
}
