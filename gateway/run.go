package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// defaultMaxFailing is how long a device or sink may fail before /healthz
// reports it, when health.max_failing is not set.
const defaultMaxFailing = time.Minute

// sourceState follows one device from the samples it emits and logs each
// change between online and offline once, never per sample. A device is
// offline (failing) when it does not answer: a batch in which every sample
// is Bad for a reason that concerns the link, not one point. For Modbus that
// is a Bad sample without an exception code (a timeout, a refused or lost
// connection; an exception is an answer); for OPC UA a batch of every node,
// all Bad for one reason (the adapter reports a failed or lost connection
// so). A point that alone reads Bad (a sensor failure, an unmapped register)
// does not make its device offline.
type sourceState struct {
	dev *device
	log *slog.Logger

	mu     sync.Mutex
	seen   bool
	online bool
	since  time.Time // when it went offline
	reason string

	good, uncertain, bad atomic.Uint64
}

func (s *sourceState) observe(batch []bridge.Sample) {
	ok := false
	reason := ""
	sameReason := true
	var g, u, b uint64
	for i := range batch {
		switch batch[i].Quality {
		case bridge.Good:
			g++
			ok = true
		case bridge.Uncertain:
			u++
			ok = true
		default:
			b++
			if reason == "" {
				reason = batch[i].Reason
			} else if batch[i].Reason != reason {
				sameReason = false
			}
			if s.dev.mb != nil && batch[i].Code != 0 {
				ok = true // a Modbus exception: the device answered
			}
		}
	}
	if s.dev.ua != nil && !ok && (len(batch) < len(s.dev.nodes) || !sameReason) {
		ok = true // some nodes read Bad, the server answered
	}
	s.good.Add(g)
	s.uncertain.Add(u)
	s.bad.Add(b)
	if len(batch) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ok && (!s.seen || !s.online):
		s.online, s.since, s.reason = true, time.Time{}, ""
		s.log.Info("device online", "device", s.dev.name, "via", s.dev.desc)
	case !ok && (!s.seen || s.online):
		s.online, s.since, s.reason = false, time.Now(), reason
		s.log.Warn("device offline", "device", s.dev.name, "via", s.dev.desc, "reason", reason)
	}
	s.seen = true
}

// failing returns since when the device has been failing, or zero. A device
// that has emitted nothing yet is failing since the gateway started.
func (s *sourceState) failing(start time.Time) (time.Time, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.seen {
		return start, "no samples yet"
	}
	if s.online {
		return time.Time{}, ""
	}
	return s.since, s.reason
}

// emitter returns the Emitter the device's poller writes to: it follows
// the device's state and hands the samples on. The Bridge numbers them
// (Sample.Seq) from its SeqStart, which starts above what the spools hold.
func (s *sourceState) emitter(out bridge.Emitter) bridge.Emitter {
	return bridge.EmitterFunc(func(ctx context.Context, batch []bridge.Sample) error {
		s.observe(batch)
		return out.Emit(ctx, batch)
	})
}

// source returns what the bridge runs for the device: its poller, or with
// once a single poll (an OPC UA device: until every node gave a reading),
// each reporting its samples to the state.
func (s *sourceState) source(once bool, onceTimeout time.Duration) bridge.Source {
	dev := s.dev
	return bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		em := s.emitter(out)
		switch {
		case dev.mb != nil && once:
			return dev.mb.PollOnce(ctx, em)
		case dev.mb != nil:
			return dev.mb.Run(ctx, em)
		case !once:
			return dev.ua.Run(ctx, em)
		}
		// OPC UA has no single poll: run the source until every node has
		// given a sample (good or bad), or the timeout passes.
		ctx, cancel := context.WithTimeout(ctx, onceTimeout)
		defer cancel()
		var mu sync.Mutex
		want := make(map[string]bool, len(dev.nodes))
		for _, n := range dev.nodes {
			want[n.Name] = true
		}
		done := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(want)
		}
		err := dev.ua.Run(ctx, bridge.EmitterFunc(func(ctx context.Context, batch []bridge.Sample) error {
			err := em.Emit(ctx, batch)
			mu.Lock()
			for i := range batch {
				delete(want, batch[i].Point)
			}
			left := len(want)
			mu.Unlock()
			if left == 0 {
				cancel()
			}
			return err
		}))
		if n := done(); n > 0 && err == nil {
			err = fmt.Errorf("device %s: %d of %d nodes gave no reading within %v", dev.name, n, len(dev.nodes), onceTimeout)
		}
		return err
	})
}

// unhealthy lists the devices and sinks failing for longer than allowed.
func (rt *Gateway) unhealthy(now time.Time) []string {
	limit := rt.a.health.MaxFailing
	if limit == 0 {
		limit = defaultMaxFailing
	}
	var out []string
	for _, s := range rt.states {
		if since, reason := s.failing(rt.started); !since.IsZero() && now.Sub(since) > limit {
			out = append(out, fmt.Sprintf("device %s failing for %v: %s", s.dev.name, now.Sub(since).Round(time.Second), reason))
		}
	}
	st := rt.bridge.Stats()
	for _, s := range st.Sources {
		if !s.Running && s.Err != "" {
			out = append(out, fmt.Sprintf("device %s stopped: %s", s.Name, s.Err))
		}
	}
	for _, s := range st.Sinks {
		if !s.Up && !s.DownSince.IsZero() && now.Sub(s.DownSince) > limit {
			out = append(out, fmt.Sprintf("sink %s down for %v: %s", s.Name, now.Sub(s.DownSince).Round(time.Second), s.LastError))
		}
	}
	return out
}
