package bridge

import "time"

// Health is a source's own account of the device or server behind it: whether
// it answers, since when, and why not. The source reports it because it is
// the one that knows (a timeout, a refused connection, an endpoint list that
// came back empty); consumers (SourceStats, /healthz, metrics, a Sparkplug
// DDEATH) read it rather than infer it from the samples.
type Health struct {
	Up     bool      // the device answered the last attempt
	Since  time.Time // when Up last changed; the source's start when it never did
	Reason string    // why it is down (the last error), "" when up
}

// HealthReporter is implemented by sources that know the health of their
// device (modbus.Device, the OPC UA source). Health must be safe to call
// concurrently with Run, cheap, and non-blocking. Before Run, or before the
// first attempt, it reports Up false with Reason "not started" or
// "connecting".
type HealthReporter interface {
	Health() Health
}
