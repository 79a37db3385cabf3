package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// The batch layout (the MQTT and NATS sinks' layout: batch) puts the samples
// of one source from one poll cycle in one JSON message, instead of one
// message per sample:
//
//	{"source":"meter1","time":"2026-11-21T10:00:00.123456789Z","seq":[101,103],"points":[
//	  {"point":"voltage_l1","value":230.5,"unit":"V"},
//	  {"point":"current_l1","value":4.25,"unit":"A"},
//	  {"point":"frequency","quality":"bad","error":"timeout"}]}
//
// Fields, in this order:
//   - source: always present.
//   - time: the first sample's Time (as in [AppendJSON]); left out when
//     zero. A point whose Time differs from it has its own "time".
//   - seq: [first, last] when every sample of the message is numbered and
//     the numbers run without a gap: the n-th point (from 0) has seq
//     first+n, so a consumer that sees the next message start at last+1
//     lost nothing. When some samples have no number (those a sink with
//     SinkOptions.Unfiltered gets from report by exception), there is no
//     range and each numbered point has its own "seq".
//   - points: an array, in the order the source emitted them. Each entry
//     holds point (always), value (as in [AppendJSON]; absent for no
//     value), unit (left out when empty, or when the sink sends units once
//     in a metadata message, see [AppendMetaJSON]), quality (left out when
//     "good"), time, error and code (as in AppendJSON, left out when empty),
//     and seq (see above).
//
// [NextBatch] cuts a sink's batch into messages: a message ends where the
// source changes, where a point repeats (the next poll cycle), or where the
// sequence numbers have a gap. [DecodeBatchJSON] decodes a message back
// into samples.

// NextBatch returns how many of the first samples of batch go into one
// message of the batch layout: the samples of one source, with no point
// twice and sequence numbers without a gap, at most max (0: no limit).
// It returns 0 only for an empty batch.
func NextBatch(batch []Sample, max int) int {
	if len(batch) == 0 {
		return 0
	}
	src := batch[0].Source
	var seen map[string]struct{}
	last := batch[0].Seq
	n := 1
	for ; n < len(batch) && (max <= 0 || n < max); n++ {
		s := &batch[n]
		if s.Source != src {
			break
		}
		if s.Seq != 0 {
			if last != 0 && s.Seq != last+1 {
				break
			}
			last = s.Seq
		}
		// A linear search for the usual few dozen points; a set beyond.
		if n < 32 {
			dup := false
			for i := range n {
				if batch[i].Point == s.Point {
					dup = true
					break
				}
			}
			if dup {
				break
			}
			continue
		}
		if seen == nil {
			seen = make(map[string]struct{}, 2*n)
			for i := range n {
				seen[batch[i].Point] = struct{}{}
			}
		}
		if _, dup := seen[s.Point]; dup {
			break
		}
		seen[s.Point] = struct{}{}
	}
	return n
}

// AppendBatchJSON appends the batch layout encoding of msg, the samples of
// one message as cut by [NextBatch], to dst. With units false the points'
// units are left out (the sink sends them in a metadata message).
func AppendBatchJSON(dst []byte, msg []Sample, units bool) []byte {
	if len(msg) == 0 {
		return dst
	}
	var c timeCache
	t0 := msg[0].Time
	dst = append(dst, `{"source":`...)
	dst = appendString(dst, msg[0].Source)
	if !t0.IsZero() {
		dst = append(dst, `,"time":"`...)
		dst = c.appendTime(dst, t0)
		dst = append(dst, '"')
	}
	ranged := msg[0].Seq != 0
	for i := 1; i < len(msg) && ranged; i++ {
		ranged = msg[i].Seq == msg[i-1].Seq+1
	}
	if ranged {
		dst = append(dst, `,"seq":[`...)
		dst = strconv.AppendUint(dst, msg[0].Seq, 10)
		dst = append(dst, ',')
		dst = strconv.AppendUint(dst, msg[len(msg)-1].Seq, 10)
		dst = append(dst, ']')
	}
	dst = append(dst, `,"points":[`...)
	for i := range msg {
		s := &msg[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"point":`...)
		dst = appendString(dst, s.Point)
		if s.Value.kind != KindNone {
			dst = append(dst, `,"value":`...)
			dst = appendValue(dst, s.Value)
		}
		if units && s.Unit != "" {
			dst = append(dst, `,"unit":`...)
			dst = appendString(dst, s.Unit)
		}
		if s.Quality != Good {
			dst = append(dst, `,"quality":"`...)
			dst = append(dst, s.Quality.String()...)
			dst = append(dst, '"')
		}
		if !s.Time.Equal(t0) {
			dst = append(dst, `,"time":"`...)
			dst = c.appendTime(dst, s.Time)
			dst = append(dst, '"')
		}
		if s.Reason != "" {
			dst = append(dst, `,"error":`...)
			dst = appendString(dst, s.Reason)
		}
		if s.Code != 0 {
			dst = append(dst, `,"code":`...)
			dst = strconv.AppendUint(dst, uint64(s.Code), 10)
		}
		if !ranged && s.Seq != 0 {
			dst = append(dst, `,"seq":`...)
			dst = strconv.AppendUint(dst, s.Seq, 10)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

type batchJSON struct {
	Source *string     `json:"source"`
	Time   time.Time   `json:"time"`
	Seq    []uint64    `json:"seq"`
	Points []pointJSON `json:"points"`
}

type pointJSON struct {
	Point   *string         `json:"point"`
	Value   json.RawMessage `json:"value"`
	Unit    string          `json:"unit"`
	Quality string          `json:"quality"`
	Time    *time.Time      `json:"time"`
	Error   string          `json:"error"`
	Code    uint32          `json:"code"`
	Seq     uint64          `json:"seq"`
}

// DecodeBatchJSON decodes a message of the batch layout into its samples.
// Units left out of the message are empty; [DecodeMetaJSON] gives them.
func DecodeBatchJSON(data []byte) ([]Sample, error) {
	var m batchJSON
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("bridge: batch message: %w", err)
	}
	if m.Source == nil {
		return nil, errors.New("bridge: batch message: no source")
	}
	if m.Seq != nil && (len(m.Seq) != 2 || m.Seq[1]-m.Seq[0] != uint64(len(m.Points)-1)) {
		return nil, fmt.Errorf("bridge: batch message: seq %v does not span its %d points", m.Seq, len(m.Points))
	}
	out := make([]Sample, len(m.Points))
	for i, p := range m.Points {
		if p.Point == nil {
			return nil, fmt.Errorf("bridge: batch message: points[%d]: no point", i)
		}
		s := Sample{Source: *m.Source, Point: *p.Point, Unit: p.Unit, Time: m.Time, Reason: p.Error, Code: p.Code, Seq: p.Seq}
		if p.Time != nil {
			s.Time = *p.Time
		}
		if m.Seq != nil {
			s.Seq = m.Seq[0] + uint64(i)
		}
		switch p.Quality {
		case "", "good":
			s.Quality = Good
		default:
			q, ok := ParseQuality(p.Quality)
			if !ok {
				return nil, fmt.Errorf("bridge: batch message: points[%d]: unknown quality %q", i, p.Quality)
			}
			s.Quality = q
		}
		if len(p.Value) > 0 {
			v, err := decodeValue(p.Value)
			if err != nil {
				return nil, fmt.Errorf("bridge: batch message: points[%d]: %w", i, err)
			}
			s.Value = v
		}
		out[i] = s
	}
	return out, nil
}

// AppendMetaJSON appends the metadata message of a source to dst: the
// units of its points, which a sink in the batch layout may send once per
// connection (retained, on MQTT) instead of in every message:
//
//	{"source":"meter1","units":{"current_l1":"A","voltage_l1":"V"}}
//
// Points are sorted by name. A consumer keeps the last metadata message of
// each source and gives each point of a batch message the unit it names.
func AppendMetaJSON(dst []byte, source string, units map[string]string) []byte {
	names := make([]string, 0, len(units))
	for p := range units {
		names = append(names, p)
	}
	slices.Sort(names)
	dst = append(dst, `{"source":`...)
	dst = appendString(dst, source)
	dst = append(dst, `,"units":{`...)
	for i, p := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, p)
		dst = append(dst, ':')
		dst = appendString(dst, units[p])
	}
	return append(dst, "}}"...)
}

// DecodeMetaJSON decodes a metadata message ([AppendMetaJSON]).
func DecodeMetaJSON(data []byte) (source string, units map[string]string, err error) {
	var m struct {
		Source *string           `json:"source"`
		Units  map[string]string `json:"units"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return "", nil, fmt.Errorf("bridge: metadata message: %w", err)
	}
	if m.Source == nil {
		return "", nil, errors.New("bridge: metadata message: no source")
	}
	return *m.Source, m.Units, nil
}
