package sparkplug

import (
	"testing"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

// TestConformance runs the Sink conformance suite over Mosquitto. There
// is no read-back: Sparkplug timestamps are milliseconds, and the suite
// compares times to the nanosecond; what arrives is checked by the other
// tests, decoded.
func TestConformance(t *testing.T) {
	addr := brokerAddr(t)
	bridgetest.TestSink(t, bridgetest.Harness{New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
		s, err := New(testConfig(t, addr))
		if err != nil {
			t.Fatal(err)
		}
		return s, nil
	}})
}
