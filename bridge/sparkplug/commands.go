package sparkplug

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
)

// ErrCommandsOff is why a DCMD is refused when Config.Commands is false.
var ErrCommandsOff = fmt.Errorf("sparkplug: commands: false: %w", bridge.ErrNotWritable)

// runCommands is the command goroutine: it hands each DCMD's metrics, in
// order, to the bridge's Write, one at a time, until ctx ends.
func (s *Sink) runCommands(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.cmds:
			s.handleDCMD(ctx, m)
		}
	}
}

// handleDCMD writes the metrics of a DCMD (spec 4.2.2.4, 6.4.24): each names a
// metric of the device by name or alias, with a value of its datatype.
// The write goes through the bridge, which applies the source's rules
// (writable, range, type) and emits the read-back sample, which this sink
// publishes as DDATA. Anything refused is logged and counted, never
// written.
func (s *Sink) handleDCMD(ctx context.Context, msg message) {
	t, err := ParseTopic(msg.topic)
	if err != nil || t.Type != DCMD || t.GroupID != s.cfg.GroupID || t.EdgeNodeID != s.cfg.EdgeNodeID {
		return
	}
	var p sppb.Payload
	if err := proto.Unmarshal(msg.payload, &p); err != nil {
		s.refuse(t.DeviceID, "", fmt.Errorf("not a Sparkplug B payload: %v", err))
		return
	}
	h, _ := s.getHost()
	for _, pm := range p.GetMetrics() {
		source, name, dt, err := s.resolveCommand(t.DeviceID, pm)
		if err == nil && !s.cfg.Commands {
			err = ErrCommandsOff
		}
		if err == nil && h == nil {
			err = fmt.Errorf("sparkplug: no bridge to write through: %w", bridge.ErrNotWritable)
		}
		var v bridge.Value
		if err == nil {
			v, err = commandValue(pm, dt)
		}
		if err != nil {
			s.refuse(t.DeviceID, name, err)
			continue
		}
		s.mu.Lock()
		s.st.Commands++
		s.mu.Unlock()
		res := h.Write(ctx, bridge.WriteRequest{Source: source, Point: name, Value: v, Origin: "sparkplug " + msg.topic})
		if !res.OK {
			s.refuse(t.DeviceID, name, res.Err)
		}
	}
}

func (s *Sink) refuse(device, metric string, err error) {
	s.mu.Lock()
	s.st.CommandsRefused++
	s.mu.Unlock()
	s.log.Warn("sparkplug: DCMD refused", "device", device, "metric", metric, "err", err)
}

// resolveCommand finds the metric a DCMD metric names, by name or by
// alias (spec 6.4.6: a birth ties an alias to a name for later messages), and its datatype: the one the
// command gives, else the one of its birth.
func (s *Sink) resolveCommand(deviceID string, pm *sppb.Payload_Metric) (source, name string, dt sppb.DataType, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.byID[deviceID]
	if d == nil {
		return "", pm.GetName(), 0, fmt.Errorf("sparkplug: DCMD to device %q, which this edge node has not born: %w", deviceID, bridge.ErrUnknownSource)
	}
	var m *metric
	switch {
	case pm.Name != nil:
		m = d.metrics[pm.GetName()]
	case pm.Alias != nil:
		for _, c := range d.order {
			if c.alias == pm.GetAlias() {
				m = c
				break
			}
		}
	}
	if m == nil {
		what := fmt.Sprintf("%q", pm.GetName())
		if pm.Name == nil {
			what = fmt.Sprintf("alias %d", pm.GetAlias())
		}
		return "", pm.GetName(), 0, fmt.Errorf("sparkplug: DCMD to metric %s, which device %q has not born: %w", what, deviceID, bridge.ErrUnknownPoint)
	}
	dt = m.dt
	if pm.Datatype != nil && pm.GetDatatype() != 0 {
		dt = sppb.DataType(pm.GetDatatype())
	}
	return d.source, m.name, dt, nil
}

// commandValue is the value of a DCMD metric of datatype dt (spec 6.4.17):
// the integer types from int_value or long_value (UInt32 is found in
// either: reference encoders put it in long_value), Float and Double from
// float_value or double_value, Boolean and String from their fields. A
// null, a missing value or another datatype is an error wrapping
// bridge.ErrWrongType.
func commandValue(pm *sppb.Payload_Metric, dt sppb.DataType) (bridge.Value, error) {
	bad := func(why string) (bridge.Value, error) {
		return bridge.Value{}, fmt.Errorf("sparkplug: DCMD value of datatype %s: %s: %w", dt, why, bridge.ErrWrongType)
	}
	if pm.GetIsNull() || pm.Value == nil {
		return bad("no value")
	}
	integer := func() (uint64, bool) {
		switch v := pm.Value.(type) {
		case *sppb.Payload_Metric_IntValue:
			return uint64(v.IntValue), true
		case *sppb.Payload_Metric_LongValue:
			return v.LongValue, true
		}
		return 0, false
	}
	switch dt {
	case sppb.DataType_Int8, sppb.DataType_Int16, sppb.DataType_Int32:
		u, ok := integer()
		if !ok {
			return bad("want int_value")
		}
		if _, long := pm.Value.(*sppb.Payload_Metric_LongValue); long {
			return bridge.Int(int64(u)), nil
		}
		return bridge.Int(int64(int32(uint32(u)))), nil
	case sppb.DataType_Int64:
		// long_value only (spec 6.4.17): an int_value is 32 bits whose
		// sign an Int64 cannot tell, so guessing could write a wrong value.
		v, ok := pm.Value.(*sppb.Payload_Metric_LongValue)
		if !ok {
			return bad("want long_value")
		}
		return bridge.Int(int64(v.LongValue)), nil
	case sppb.DataType_UInt8, sppb.DataType_UInt16, sppb.DataType_UInt32, sppb.DataType_UInt64:
		u, ok := integer()
		if !ok {
			return bad("want int_value or long_value")
		}
		return bridge.Uint(u), nil
	case sppb.DataType_Float, sppb.DataType_Double:
		switch v := pm.Value.(type) {
		case *sppb.Payload_Metric_DoubleValue:
			return bridge.Float(v.DoubleValue), nil
		case *sppb.Payload_Metric_FloatValue:
			return bridge.Float(float64(v.FloatValue)), nil
		}
		return bad("want float_value or double_value")
	case sppb.DataType_Boolean:
		v, ok := pm.Value.(*sppb.Payload_Metric_BooleanValue)
		if !ok {
			return bad("want boolean_value")
		}
		return bridge.Bool(v.BooleanValue), nil
	case sppb.DataType_String, sppb.DataType_Text:
		v, ok := pm.Value.(*sppb.Payload_Metric_StringValue)
		if !ok {
			return bad("want string_value")
		}
		return bridge.String(v.StringValue), nil
	}
	return bad("not a datatype this edge node writes")
}

// state is a primary host application's STATE message (spec 4.2.3.1).
type state struct {
	online    bool
	timestamp int64
}

// parseState decodes {"online": bool, "timestamp": ms}; both are required.
func parseState(b []byte) (state, error) {
	var raw struct {
		Online    *bool    `json:"online"`
		Timestamp *float64 `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return state{}, fmt.Errorf(`want {"online": true|false, "timestamp": ms}: %v`, err)
	}
	if raw.Online == nil || raw.Timestamp == nil {
		return state{}, errors.New(`want {"online": true|false, "timestamp": ms}: a key is missing`)
	}
	ts := *raw.Timestamp
	if ts < 0 || ts > math.MaxInt64/2 || ts != math.Trunc(ts) {
		return state{}, fmt.Errorf("timestamp %v is not a time in ms", ts)
	}
	return state{online: *raw.Online, timestamp: int64(ts)}, nil
}
