package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Command is a write request as it arrives from the IoT side (an MQTT or a
// NATS message): {"value": <json>, "id": "<optional>"}.
type Command struct {
	Value Value
	ID    string
}

// MaxCommandBytes bounds a command payload.
const MaxCommandBytes = 64 << 10

// DecodeCommand decodes a command payload. The value keeps its JSON type: an
// integer is an Int (a Uint above MaxInt64), a number with a fraction or an
// exponent a Float, true/false a Bool, a string a String; null, an object or
// an array, a missing value, unknown keys, trailing data and payloads over
// MaxCommandBytes are errors. It never panics, whatever the payload.
func DecodeCommand(data []byte) (Command, error) {
	if len(data) > MaxCommandBytes {
		return Command{}, fmt.Errorf("command: %d bytes, more than %d", len(data), MaxCommandBytes)
	}
	var raw struct {
		Value json.RawMessage `json:"value"`
		ID    *string         `json:"id"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Command{}, fmt.Errorf(`command: want {"value": ..., "id": "..."}: %v`, err)
	}
	if dec.More() {
		return Command{}, fmt.Errorf("command: data after the JSON object")
	}
	var c Command
	if raw.ID != nil {
		c.ID = *raw.ID
	}
	if len(raw.Value) == 0 {
		return c, fmt.Errorf(`command: no "value"`)
	}
	v, err := decodeCommandValue(raw.Value)
	if err != nil {
		return c, err
	}
	c.Value = v
	return c, nil
}

func decodeCommandValue(m json.RawMessage) (Value, error) {
	t := strings.TrimSpace(string(m))
	switch {
	case t == "null":
		return Value{}, fmt.Errorf(`command: "value" is null`)
	case t == "true":
		return Bool(true), nil
	case t == "false":
		return Bool(false), nil
	case strings.HasPrefix(t, `"`):
		var s string
		if err := json.Unmarshal(m, &s); err != nil {
			return Value{}, fmt.Errorf(`command: "value": %v`, err)
		}
		return String(s), nil
	case strings.HasPrefix(t, "{"), strings.HasPrefix(t, "["):
		return Value{}, fmt.Errorf(`command: "value" must be a number, a bool or a string, not %s`, map[bool]string{true: "an object", false: "an array"}[t[0] == '{'])
	}
	// A number: exact when it is an integer.
	if !strings.ContainsAny(t, ".eE") {
		if i, err := strconv.ParseInt(t, 10, 64); err == nil {
			return Int(i), nil
		}
		if u, err := strconv.ParseUint(t, 10, 64); err == nil {
			return Uint(u), nil
		}
		return Value{}, fmt.Errorf(`command: "value" %s does not fit a 64-bit integer`, t)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return Value{}, fmt.Errorf(`command: "value" %s: not a number`, t)
	}
	return Float(f), nil
}

// AppendCommandReply appends the JSON answer to a command:
// {"id":"abc","ok":true,"value":42.5,"matched":true,"time":"..."} or
// {"id":"abc","ok":false,"error":"setpoint: 95 is above max 80"}.
func AppendCommandReply(dst []byte, r WriteResult) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, r.ID)
	if r.OK {
		dst = append(dst, `,"ok":true`...)
		if !r.Value.IsNone() {
			dst = append(dst, `,"value":`...)
			dst = appendValue(dst, r.Value)
		}
		dst = append(dst, `,"matched":`...)
		dst = strconv.AppendBool(dst, r.Matched)
		if !r.Time.IsZero() {
			dst = append(dst, `,"time":"`...)
			dst = appendTime(dst, r.Time)
			dst = append(dst, '"')
		}
	} else {
		dst = append(dst, `,"ok":false`...)
		if r.Err != nil {
			dst = append(dst, `,"error":`...)
			dst = appendString(dst, r.Err.Error())
		}
	}
	return append(dst, '}')
}
