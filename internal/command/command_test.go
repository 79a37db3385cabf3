package command

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	tmpl "github.com/m2mbridge/m2mbridge/internal/template"
)

func parse(t testing.TB, s string, sep byte, wild string) (*Pattern, error) {
	t.Helper()
	tp, err := tmpl.Parse(s, tmpl.Syntax{What: "template"})
	require.NoError(t, err)
	return NewPattern(tp, sep, wild)
}

func TestPattern(t *testing.T) {
	for _, tc := range []struct {
		name, tmpl, filter string
		topic, src, pt     string
		ok                 bool
		bad                bool
	}{
		{name: "default", tmpl: "m2m/cmd/{source}/{point}", filter: "m2m/cmd/+/+", topic: "m2m/cmd/plc1/setpoint", src: "plc1", pt: "setpoint", ok: true},
		{name: "swapped", tmpl: "x/{point}/{source}/set", filter: "x/+/+/set", topic: "x/sp/plc/set", src: "plc", pt: "sp", ok: true},
		{name: "too many levels", tmpl: "m2m/cmd/{source}/{point}", filter: "m2m/cmd/+/+", topic: "m2m/cmd/a/b/reply"},
		{name: "too few levels", tmpl: "m2m/cmd/{source}/{point}", filter: "m2m/cmd/+/+", topic: "m2m/cmd/a"},
		{name: "other literal", tmpl: "m2m/cmd/{source}/{point}", filter: "m2m/cmd/+/+", topic: "m2m/cmx/a/b"},
		{name: "empty level", tmpl: "m2m/cmd/{source}/{point}", filter: "m2m/cmd/+/+", topic: "m2m/cmd//b", pt: "b", ok: true},
		{name: "partial level", tmpl: "m2m/cmd/{source}-{point}", bad: true},
		{name: "no point", tmpl: "m2m/cmd/{source}", bad: true},
		{name: "source twice", tmpl: "{source}/{source}/{point}", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parse(t, tc.tmpl, '/', "+")
			if tc.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.filter, p.Filter())
			s, pt, ok := p.Match(tc.topic)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.src, s)
			assert.Equal(t, tc.pt, pt)
		})
	}
}

func FuzzPatternMatch(f *testing.F) {
	f.Add("m2m/cmd/{source}/{point}", "m2m/cmd/a/b")
	f.Add("{source}/{point}", "/")
	f.Add("a/{point}/{source}", "a//")
	f.Fuzz(func(t *testing.T, template, topic string) {
		tp, err := tmpl.Parse(template, tmpl.Syntax{What: "template"})
		if err != nil {
			return
		}
		p, err := NewPattern(tp, '/', "+")
		if err != nil {
			return
		}
		s, pt, ok := p.Match(topic)
		if ok {
			// The names read back expand to the topic again.
			assert.Equal(t, topic, string(tp.Append(nil, s, pt)))
		}
	})
}

func TestHandleDedup(t *testing.T) {
	var writes atomic.Int32
	release := make(chan struct{})
	write := func(ctx context.Context, req bridge.WriteRequest) bridge.WriteResult {
		writes.Add(1)
		<-release
		return bridge.WriteResult{ID: req.ID, OK: true, Value: req.Value, Matched: true}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := Start(ctx, write, time.Second, NewSeen(time.Minute, 100))
	defer p.Wait()
	defer cancel()

	msg := Msg{Source: "s", Point: "p", Payload: []byte(`{"value":1,"id":"a"}`)}
	var wg sync.WaitGroup
	answers := make([][]byte, 3)
	for i := range answers {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = p.Handle(ctx, msg) }()
	}
	require.Eventually(t, func() bool { return writes.Load() == 1 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	assert.EqualValues(t, 1, writes.Load(), "one write for three deliveries")
	for _, a := range answers {
		assert.JSONEq(t, `{"id":"a","ok":true,"value":1,"matched":true}`, string(a))
	}
	// Another point with the same id is another command.
	msg.Point = "q"
	p.Handle(ctx, msg)
	assert.EqualValues(t, 2, writes.Load())
	// No id: no dedup.
	msg.Payload = []byte(`{"value":1}`)
	p.Handle(ctx, msg)
	p.Handle(ctx, msg)
	assert.EqualValues(t, 4, writes.Load())
}

func TestHandleBadPayload(t *testing.T) {
	write := func(ctx context.Context, req bridge.WriteRequest) bridge.WriteResult {
		t.Error("written")
		return bridge.WriteResult{}
	}
	p := &Pool{write: write, timeout: time.Second, seen: NewSeen(time.Minute, 10)}
	for _, payload := range []string{``, `{`, `{"id":"x"}`, `{"value":null,"id":"x"}`, `[1]`, `{"value":1,"id":"x","extra":1}`} {
		var got map[string]any
		require.NoError(t, json.Unmarshal(p.Handle(context.Background(), Msg{Payload: []byte(payload)}), &got), payload)
		assert.Equal(t, false, got["ok"], payload)
		assert.NotEmpty(t, got["error"], payload)
	}
}

func TestSeenBounds(t *testing.T) {
	s := NewSeen(time.Minute, 3)
	now := time.Now()
	for i := range 10 {
		e, first := s.begin(key{"s", "p", string(rune('a' + i))}, now)
		require.True(t, first)
		close(e.done)
	}
	assert.LessOrEqual(t, s.Len(), 3)
	_, first := s.begin(key{"s", "p", "j"}, now)
	assert.False(t, first, "the newest is remembered")
	_, first = s.begin(key{"s", "p", "j"}, now.Add(2*time.Minute))
	assert.True(t, first, "forgotten after the window")
}
