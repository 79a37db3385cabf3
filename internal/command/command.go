// Package command is what the MQTT and NATS command sources share: the
// handling of one command (decode, write through a [bridge.WriteFunc],
// answer), the window that keeps a redelivered command from being written
// twice ([Seen]), and a bounded pool of workers ([Pool]) that the clients'
// callbacks hand messages to.
//
// A Pool and a Seen may be used from any goroutine.
package command

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Defaults of the command sources.
const (
	// Window is how long an answered command id is remembered.
	Window = time.Minute
	// MaxSeen bounds the ids remembered; past it the oldest is forgotten.
	MaxSeen = 10_000
	// Workers is how many commands are handled at once; a client's
	// callback waits while all are busy, which holds the broker back.
	Workers = 16
)

// Msg is one command as a client received it.
type Msg struct {
	Source, Point string
	// Origin is logged by the write: "mqtt m2m/cmd/plc1/setpoint".
	Origin  string
	Payload []byte
	// Reply sends the answer; it is called once per Msg, from a worker,
	// and must return by the time ctx ends.
	Reply func(ctx context.Context, answer []byte)
}

// Pool handles commands with a bounded number of workers.
type Pool struct {
	write   bridge.WriteFunc
	timeout time.Duration
	seen    *Seen
	jobs    chan Msg
	wg      sync.WaitGroup
}

// Start starts a Pool of [Workers] that write through write, each write
// bounded by timeout, until ctx ends. Wait waits for the workers.
func Start(ctx context.Context, write bridge.WriteFunc, timeout time.Duration, seen *Seen) *Pool {
	p := &Pool{write: write, timeout: timeout, seen: seen, jobs: make(chan Msg)}
	p.wg.Add(Workers)
	for range Workers {
		go func() {
			defer p.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-p.jobs:
					answer := p.Handle(ctx, m)
					if answer != nil {
						m.Reply(ctx, answer)
					}
				}
			}
		}()
	}
	return p
}

// Submit hands m to a worker, waiting while all are busy. It reports false,
// and m is not handled, when ctx ended first.
func (p *Pool) Submit(ctx context.Context, m Msg) bool {
	select {
	case p.jobs <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// Wait waits for the workers, which end when Start's ctx ends.
func (p *Pool) Wait() { p.wg.Wait() }

// Handle decodes, writes and answers one command and returns the answer,
// or nil when ctx ended before there was one (a duplicate waiting for the
// first delivery's answer). A payload that does not decode is answered
// ok:false with the reason and nothing is written. A command with an id
// already answered (or being written) for the same source and point within
// the window is not written again: it gets the first answer.
func (p *Pool) Handle(ctx context.Context, m Msg) []byte {
	cmd, err := bridge.DecodeCommand(m.Payload)
	if err != nil {
		return bridge.AppendCommandReply(nil, bridge.WriteResult{ID: cmd.ID, Err: err})
	}
	var e *entry
	if cmd.ID != "" && p.seen != nil {
		var first bool
		e, first = p.seen.begin(key{m.Source, m.Point, cmd.ID}, time.Now())
		if !first {
			select {
			case <-e.done:
				return e.answer
			case <-ctx.Done():
				return nil
			}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, p.timeout)
	res := p.write(wctx, bridge.WriteRequest{Source: m.Source, Point: m.Point, Value: cmd.Value, ID: cmd.ID, Origin: m.Origin})
	cancel()
	res.ID = cmd.ID
	if !res.OK && res.Err == nil {
		res.Err = fmt.Errorf("%s: write failed", m.Point)
	}
	answer := bridge.AppendCommandReply(nil, res)
	if e != nil {
		e.answer = answer
		close(e.done)
	}
	return answer
}

type key struct{ source, point, id string }

type entry struct {
	k      key
	at     time.Time
	done   chan struct{} // closed once answer is set
	answer []byte
}

// Seen remembers the command ids of each source and point for a window, at
// most a bounded number of them, so that a duplicate delivery (MQTT QoS 1
// redelivers; a NATS requester may retry) is answered without a second
// write. The zero value is not usable; see [NewSeen].
type Seen struct {
	window time.Duration
	max    int

	mu    sync.Mutex
	m     map[key]*entry
	order []*entry // oldest first; order[head:] are live
	head  int
}

// NewSeen returns a Seen that remembers an id for window, and at most max
// ids.
func NewSeen(window time.Duration, max int) *Seen {
	return &Seen{window: window, max: max, m: make(map[key]*entry)}
}

// begin returns the entry of k and whether this is its first delivery
// within the window.
func (s *Seen) begin(k key, now time.Time) (*entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Forget what is older than the window, or over the bound.
	for s.head < len(s.order) {
		old := s.order[s.head]
		if now.Sub(old.at) < s.window && len(s.order)-s.head < s.max {
			break
		}
		if s.m[old.k] == old {
			delete(s.m, old.k)
		}
		s.order[s.head] = nil
		s.head++
	}
	if s.head > len(s.order)/2 && s.head > 64 {
		s.order = append(s.order[:0], s.order[s.head:]...)
		s.head = 0
	}
	if e, ok := s.m[k]; ok {
		return e, false
	}
	e := &entry{k: k, at: now, done: make(chan struct{})}
	s.m[k] = e
	s.order = append(s.order, e)
	return e, true
}

// Len returns how many ids are remembered.
func (s *Seen) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
