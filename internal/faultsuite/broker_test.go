package faultsuite

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

func uniq() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "m2mfault-" + hex.EncodeToString(b)
}

// subscribe records every sample published under prefix on the shared
// broker, into a ledger.
func subscribe(t *testing.T, addr, prefix string) *ledger {
	t.Helper()
	l := newLedger()
	o := pmqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(uniq()).SetCleanSession(true).SetAutoReconnect(false)
	cli := pmqtt.NewClient(o)
	tok := cli.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second), "subscriber connect timed out")
	require.NoError(t, tok.Error())
	tok = cli.Subscribe(prefix+"/#", 1, func(_ pmqtt.Client, m pmqtt.Message) {
		s, err := bridge.DecodeJSON(m.Payload())
		if err != nil {
			t.Errorf("message on %s is not a sample: %v: %q", m.Topic(), err, m.Payload())
			return
		}
		l.add([]bridge.Sample{s})
	})
	require.True(t, tok.WaitTimeout(10*time.Second), "subscribe timed out")
	require.NoError(t, tok.Error())
	t.Cleanup(func() { cli.Disconnect(100) })
	return l
}

// TestBrokerOutage: the broker is cut off (connections dropped, new ones
// refused) for a while and comes back: the MQTT sink with a spool delivers
// every sample the meter produced, duplicates only with equal seq, and the
// counters add up throughout.
func TestBrokerOutage(t *testing.T) {
	addr := testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	prefix := uniq()
	got := subscribe(t, addr, prefix)
	px := testproxy.New(t, addr)
	label, ref := reference(t)
	srv := meter(t)
	g, stop := start(t, fmt.Sprintf(`
%ssinks:
  - reference: {label: %s}
  - mqtt: {url: "tcp://%s", topic: "%s/{source}/{point}", qos: 1}
    overflow: spool
    retry: {initial: 20ms, max: 200ms}
spool: {dir: %s}
shutdown: {drain_timeout: 20s}
`, meterYAML(srv.URL(), "20ms", 2, ""), label, px.Addr(), prefix, filepath.Join(t.TempDir(), "spool")))
	stopScrape := make(chan struct{})
	wg := scrape(t, g, stopScrape)

	waitFor(t, "samples through the broker", 20*time.Second, func() bool { return got.len() >= 100 })
	px.Cut()
	cutAt := ref.len()
	waitFor(t, "the sink to notice the outage", 30*time.Second, func() bool { return !sinkStats(t, g, "mqtt").Up })
	waitFor(t, "more samples during the outage", 20*time.Second, func() bool { return ref.len() >= cutAt+200 })
	px.Restore()
	produced := ref.len()
	took, ok := waitUntil(60*time.Second, func() bool {
		return len(got.missing(ref, nil)) == 0 && got.len() >= produced
	})
	if !ok {
		// Say where the samples are: still in the sink's queue (the sink
		// stalled), or delivered and not seen (lost on the way to the
		// subscriber).
		st := sinkStats(t, g, "mqtt")
		t.Fatalf("timed out after %v waiting for every sample produced to arrive after the outage: %d of %d produced missing, %d received; sink: %+v",
			took, len(got.missing(ref, nil)), produced, got.len(), st)
	}
	t.Logf("recovered in %v; %d samples, %d duplicates", took, produced, got.dups)
	close(stopScrape)
	wg.Wait()
	require.NoError(t, stop())
	assert.Empty(t, got.missing(ref, nil), "every sample arrived")
	assert.Empty(t, got.wrong, "duplicates only with equal seq and contents")
	st := sinkStats(t, g, "mqtt")
	assert.Zero(t, st.Dropped)
	assert.Zero(t, st.Rejected)
	addsUp(t, st)
}
