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

// sourceState follows one device: it counts its samples by quality and logs
// each change of the device's health once, never per sample. The health is
// the device's own report (modbus.Device and opcua.Source implement
// bridge.HealthReporter: a Modbus device is up when a cycle got an answer,
// an exception included; an OPC UA source when its session is up), not a
// guess from the samples: a point that alone reads Bad (a sensor failure, an
// unmapped register) does not make its device offline, and a device whose
// session is down is offline even while it emits nothing.
type sourceState struct {
	dev *device
	log *slog.Logger

	mu       sync.Mutex
	loggedUp int8 // 0 not yet logged, 1 online, -1 offline

	good, uncertain, bad atomic.Uint64
}

// health returns the device's own report on itself.
func (s *sourceState) health() bridge.Health {
	if s.dev.mb != nil {
		return s.dev.mb.Health()
	}
	if s.dev.ss != nil {
		return s.dev.ss.Health()
	}
	return s.dev.ua.Health()
}

func (s *sourceState) observe(batch []bridge.Sample) {
	var g, u, b uint64
	for i := range batch {
		switch batch[i].Quality {
		case bridge.Good:
			g++
		case bridge.Uncertain:
			u++
		default:
			b++
		}
	}
	s.good.Add(g)
	s.uncertain.Add(u)
	s.bad.Add(b)
	s.logHealth()
}

// logHealth logs a change of the device's health since the last one logged.
func (s *sourceState) logHealth() {
	h := s.health()
	if !h.Up && (h.Reason == "not started" || h.Reason == "connecting") {
		return // not an answer yet either way
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case h.Up && s.loggedUp != 1:
		s.loggedUp = 1
		s.log.Info("device online", "device", s.dev.name, "via", s.dev.desc)
	case !h.Up && s.loggedUp != -1:
		s.loggedUp = -1
		s.log.Warn("device offline", "device", s.dev.name, "via", s.dev.desc, "reason", h.Reason)
	}
}

// failing returns since when the device has been failing, and why, or zero
// when it is up. A device that has not answered yet is failing since it
// started (or the gateway did).
func (s *sourceState) failing(start time.Time) (time.Time, string) {
	h := s.health()
	if h.Up {
		return time.Time{}, ""
	}
	since := h.Since
	if since.IsZero() || since.Before(start) {
		since = start
	}
	return since, h.Reason
}

// Health is the device's own report, so that the bridge's SourceStats carry
// it.
func (s *sourceState) Health() bridge.Health { return s.health() }

// deviceSource is what the bridge runs for a device: its poller or
// subscription, with the device's own health (bridge.HealthReporter).
type deviceSource struct {
	bridge.Source
	*sourceState
}

// CheckWrite applies the device's write rules without sending anything
// (bridge.WriteChecker), where the device can (Modbus: its points' rules are
// all in the configuration; an OPC UA node's data type is the server's, so
// it is checked by Write).
func (s deviceSource) CheckWrite(point string, v bridge.Value) error {
	if s.dev.mb != nil {
		return s.dev.mb.CheckWrite(point, v)
	}
	if s.dev.ss != nil {
		return s.dev.ss.CheckWrite(point, v)
	}
	return nil
}

// Write writes a point of the device (bridge.Writer), by the device's own
// rules: only points and nodes configured writable are.
func (s deviceSource) Write(ctx context.Context, point string, v bridge.Value) (bridge.Sample, error) {
	if s.dev.mb != nil {
		return s.dev.mb.Write(ctx, point, v)
	}
	if s.dev.ss != nil {
		return s.dev.ss.Write(ctx, point, v)
	}
	return s.dev.ua.Write(ctx, point, v)
}

// opcuaInbox is the inbox an OPC UA device gets in the bridge, in samples
// per node: a subscription must not block (the server drops notifications
// it cannot deliver), so its samples wait there, bounded, and the oldest
// are dropped and counted (SourceStats.Dropped, the metrics) when a sink
// with overflow: block holds everything up.
const opcuaInbox = 64

// inbox returns the bridge's source options for the device: what the file
// says (inbox: {queue_size, overflow}); else none for a Modbus poller (it
// waits for the sinks, which only slows the polls), and a bounded
// drop-oldest inbox for an OPC UA subscription.
func (d *device) inbox() bridge.SourceOptions {
	var o bridge.SourceOptions
	switch {
	case d.inboxOpts != nil:
		o = *d.inboxOpts
	case d.ua != nil:
		o = bridge.SourceOptions{
			QueueSize: min(max(10_000, opcuaInbox*len(d.nodes)), bridge.MaxQueueSize),
			Overflow:  bridge.OverflowDropOldest,
		}
	}
	if d.report != nil {
		o.Report = *d.report
	}
	o.PointReport = d.pointReport
	return o
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
		case dev.ss != nil:
			return runSunSpec(ctx, dev.ss, em, once)
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
			reason := s.LastError
			if s.SpoolError != "" && s.SpoolError != reason {
				reason = "its spool cannot store: " + s.SpoolError + "; last error: " + reason
			}
			out = append(out, fmt.Sprintf("sink %s down for %v: %s", s.Name, now.Sub(s.DownSince).Round(time.Second), reason))
		}
	}
	return out
}
