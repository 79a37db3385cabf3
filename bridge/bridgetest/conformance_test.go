package bridgetest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

func TestMatch(t *testing.T) {
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	want := bridgetest.Samples("s", 22, base)
	assert.Empty(t, bridgetest.Match(want, append([]bridge.Sample{{Source: "other"}}, want...)), "all arrived, extras of other sources ignored")
	msg := bridgetest.Match(want, want[:0])
	assert.Contains(t, msg, "22 of 22 samples did not arrive")
	assert.Contains(t, msg, "... 17 more")
	changed := append([]bridge.Sample(nil), want...)
	changed[3].Value = bridge.Int(12345)
	assert.Contains(t, bridgetest.Match(want, changed), "1 of 22 samples")
}

// TestRecorderPassesTheConformanceSuite runs TestSink on the Recorder itself.
func TestRecorderPassesTheConformanceSuite(t *testing.T) {
	bridgetest.TestSink(t, bridgetest.Harness{New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
		r := bridgetest.NewRecorder()
		return r, r.Wait
	}})
}
