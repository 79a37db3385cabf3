package bridge_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

func TestDecodeCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bridge.Value
		id   string
		err  string
	}{
		{in: `{"value": 42.5, "id": "abc"}`, want: bridge.Float(42.5), id: "abc"},
		{in: `{"value": 42}`, want: bridge.Int(42)},
		{in: `{"value": -7}`, want: bridge.Int(-7)},
		{in: `{"value": 18446744073709551615}`, want: bridge.Uint(18446744073709551615)},
		{in: `{"value": 1e3}`, want: bridge.Float(1000)},
		{in: `{"value": true}`, want: bridge.Bool(true)},
		{in: `{"value": "auto"}`, want: bridge.String("auto")},
		{in: `{"value": null}`, err: "null"},
		{in: `{"id": "x"}`, err: `no "value"`},
		{in: `{"value": [1]}`, err: "not an array"},
		{in: `{"value": {"a":1}}`, err: "not an object"},
		{in: `{"value": 1, "extra": 2}`, err: "unknown field"},
		{in: `{"value": 1} {}`, err: "data after"},
		{in: `{"value": 99999999999999999999999}`, err: "does not fit"},
		{in: `42`, err: "want"},
		{in: ``, err: "want"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c, err := bridge.DecodeCommand([]byte(tc.in))
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want.Kind(), c.Value.Kind())
			assert.True(t, tc.want.Equal(c.Value), "%v", c.Value)
			assert.Equal(t, tc.id, c.ID)
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, s := range []string{`{"value": 42.5, "id": "abc"}`, `{"value": "x"}`, `{"value": true}`, `{"value": 1e400}`, `[]`, `{"value": -0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := bridge.DecodeCommand(data)
		if err != nil {
			assert.True(t, c.Value.IsNone(), "a refused command carries no value to write")
			return
		}
		assert.False(t, c.Value.IsNone())
		// The answer to any command is valid JSON.
		reply := bridge.AppendCommandReply(nil, bridge.WriteResult{ID: c.ID, OK: true, Value: c.Value, Time: time.Unix(0, 0)})
		assert.True(t, json.Valid(reply), "%s", reply)
	})
}

func TestAppendCommandReply(t *testing.T) {
	tm := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	assert.Equal(t, `{"id":"abc","ok":true,"value":42.5,"matched":true,"time":"2026-11-30T10:00:00.000000000Z"}`,
		string(bridge.AppendCommandReply(nil, bridge.WriteResult{ID: "abc", OK: true, Value: bridge.Float(42.5), Matched: true, Time: tm})))
	assert.Equal(t, `{"id":"abc","ok":false,"error":"setpoint: 95 is above max 80"}`,
		string(bridge.AppendCommandReply(nil, bridge.WriteResult{ID: "abc", Err: errors.New("setpoint: 95 is above max 80")})))
}
