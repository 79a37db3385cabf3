package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/pymodbus"
	"github.com/m2mbridge/m2mbridge/internal/sparkplughost"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// The Sparkplug B edge node (issue 13) proven against software nobody here
// wrote: the gateway binary with a sparkplug sink publishes to Mosquitto
// what pymodbus serves, and a host application decoding with Eclipse Tahu's
// sparkplug-payload (.ci/sparkplug-host, internal/sparkplughost) checks
// every message against the Sparkplug rules from the wire and sends the
// commands. It skips when a peer is missing, unless M2MB_INTEROP=1.

// sparkplugSetup fills the pymodbus datastore, packed by Python's struct.
const sparkplugSetup = `
hr[0:2] = regs('f', 20.0)                 # temp
hr[10] = regs('h', -7)[0]                 # limit
hr[20] = 0xA005                           # flags
hr[40:44] = regs('q', -1234567890123)     # total
hr[50:54] = regs('8s', b'm2mb-gw1')       # label
ir[0:2] = regs('I', 4000000000)           # energy
co[3] = True                              # relay
`

// sparkplugGateway is the configuration: the device py behind devProxy,
// py2 (the same points by the same names, so that aliases must differ
// across devices) straight to pymodbus, the edge node on the broker behind
// brokerProxy (so that the test can cut either), a spool so that what was read while the broker was away is
// replayed, and a file of the samples so that the test knows what was read.
const sparkplugGateway = `
devices:
  - name: py
    interval: 100ms
    modbus: {url: "tcp://%s", timeout: 500ms}
    points:
      - {name: temp, table: holding, address: 0, type: float32, unit: "°C", writable: true, min: 0, max: 100}
      - {name: limit, table: holding, address: 10, type: int16, writable: true, min: -50, max: 50}
      - {name: flags, table: holding, address: 20, type: uint16}
      - {name: total, table: holding, address: 40, type: int64, unit: Wh}
      - {name: label, table: holding, address: 50, type: string, length: 4}
      - {name: energy, table: input, address: 0, type: uint32, unit: kWh}
      - {name: relay, table: coil, address: 3, type: bool, writable: true}
  - name: py2
    interval: 100ms
    modbus: {url: "tcp://%s", timeout: 500ms}
    points:
      - {name: temp, table: holding, address: 0, type: float32, unit: "°C"}
      - {name: flags, table: holding, address: 20, type: uint16}
sinks:
  - sparkplug: {url: "tcp://%s", version: %d, group_id: %q, edge_node_id: gw1, state_dir: ./state, commands: true}
    overflow: spool
  - file: {path: samples.jsonl}
spool:
  dir: ./spool
`

// births waits for the NBIRTH from index from and the DBIRTH of py after it.
func births(t *testing.T, h *sparkplughost.Host, from int) (nbirth, dbirth sparkplughost.Message, next int) {
	t.Helper()
	nbirth, i := h.Wait(t, from, "NBIRTH", func(m sparkplughost.Message) bool { return m.Type == "NBIRTH" })
	dbirth, j := h.Wait(t, i+1, "DBIRTH of py", func(m sparkplughost.Message) bool { return m.Type == "DBIRTH" && m.Device == "py" })
	return nbirth, dbirth, j + 1
}

// ddataOf waits, from index from, for a DDATA of py in which metric
// satisfies ok.
func ddataOf(t *testing.T, h *sparkplughost.Host, from int, metric string, ok func(sparkplughost.Metric) bool) (sparkplughost.Metric, int) {
	t.Helper()
	var got sparkplughost.Metric
	_, i := h.Wait(t, from, "DDATA of py."+metric, func(m sparkplughost.Message) bool {
		if m.Type != "DDATA" || m.Device != "py" {
			return false
		}
		x, found := m.Metric(metric)
		if found && ok(x) {
			got = x
			return true
		}
		return false
	})
	return got, i
}

func floatIs(v float64) func(sparkplughost.Metric) bool {
	return func(m sparkplughost.Metric) bool { f, err := m.Float(); return err == nil && f == v }
}

func float32Words(f float32) []uint16 {
	b := math.Float32bits(f)
	return []uint16{uint16(b >> 16), uint16(b)}
}

// checkBirth checks the DBIRTH of py: every point with its value as
// pymodbus holds it, an alias, the Quality property (192, good) and the
// engineering unit; with datatypes, the Sparkplug datatype of each point's
// declared type (issue 13: float32 is Float, int16 Int16, ...).
func checkBirth(t *testing.T, db sparkplughost.Message, datatypes bool) {
	t.Helper()
	want := map[string]struct{ datatype, value, unit string }{
		"temp":   {"Float", "20", "°C"},
		"limit":  {"Int16", "-7", ""},
		"flags":  {"UInt16", "40965", ""},
		"total":  {"Int64", "-1234567890123", "Wh"},
		"label":  {"String", `"m2mb-gw1"`, ""},
		"energy": {"UInt32", "4000000000", "kWh"},
		"relay":  {"Boolean", "true", ""},
	}
	assert.Len(t, db.Metrics, len(want))
	for name, w := range want {
		m, ok := db.Metric(name)
		if !assert.True(t, ok, "DBIRTH has %s: %+v", name, db.Metrics) {
			continue
		}
		if datatypes {
			assert.Equal(t, w.datatype, m.Datatype, "%s: the datatype of its declared type", name)
		}
		assert.JSONEq(t, w.value, string(m.Value), name)
		assert.NotNil(t, m.Alias, "%s has an alias", name)
		q, ok := m.Quality()
		assert.True(t, ok, "%s has a Quality", name)
		assert.Equal(t, int64(192), q, name)
		if w.unit != "" {
			u, ok := m.Properties["engUnit"]
			if assert.True(t, ok, "%s has engUnit: %+v", name, m.Properties) {
				assert.JSONEq(t, fmt.Sprintf("%q", w.unit), string(u.Value), name)
			}
		} else {
			assert.NotContains(t, m.Properties, "engUnit", name)
		}
	}
}

// TestSparkplugInteropDatatypes checks the datatypes of the DBIRTH: each
// metric's is the one of its point's declared type (issue 13, "Datatypes"),
// not only of its value's kind — a float32 is a Float, not a Double; an
// int16 an Int16, not an Int64.
func TestSparkplugInteropDatatypes(t *testing.T) {
	sparkplughost.Require(t)
	broker := testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	srv := pymodbus.StartTCP(t, sparkplugSetup)
	group := fmt.Sprintf("m2mb-interop-%d", time.Now().UnixNano())
	h := sparkplughost.Start(t, "tcp://"+broker, group)
	logMessages(t, h)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(sparkplugGateway, srv.Addr, srv.Addr, broker, 3, group))
	start(t, dir, nil, "-config", "gateway.yaml")
	_, db, _ := births(t, h, 0)
	checkBirth(t, db, true)
	h.RequireNoViolations(t)
}

// TestSparkplugInterop runs the gateway binary as a Sparkplug edge node and
// follows one session after another: the births and their contents, a
// rebirth on NCMD, DCMD writes reaching pymodbus (and refused ones not),
// DDEATH and DBIRTH when the device goes away and comes back, the Will when
// the broker connection is cut and the replay of what was read meanwhile
// with is_historical, the Will on kill -9, bdSeq persisted across the
// restart, and NDEATH on a graceful stop. The host checks seq, bdSeq,
// aliases and the rest of the rules on every message.
func TestSparkplugInterop(t *testing.T) {
	for _, version := range []int{3, 5} {
		t.Run(fmt.Sprintf("mqtt%d", version), func(t *testing.T) { checkSparkplugInterop(t, version) })
	}
}

// checkSparkplugInterop is TestSparkplugInterop with the edge node on MQTT
// version (3 for 3.1.1, or 5).
func checkSparkplugInterop(t *testing.T, version int) {
	sparkplughost.Require(t)
	broker := testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	srv := pymodbus.StartTCP(t, sparkplugSetup)
	devProxy := testproxy.New(t, srv.Addr)
	brokerProxy := testproxy.New(t, broker)
	group := fmt.Sprintf("m2mb-interop-%d", time.Now().UnixNano())
	h := sparkplughost.Start(t, "tcp://"+broker, group)
	logMessages(t, h)

	// The independent Modbus client: pymodbus directly, not the proxy.
	mb, err := modbus.NewClient(modbus.ClientConfig{URL: "tcp://" + srv.Addr})
	require.NoError(t, err)
	defer mb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	holding := func(addr, n uint16) []uint16 {
		t.Helper()
		regs, err := mb.ReadRegisters(ctx, 1, modbus.Holding, addr, n)
		require.NoError(t, err)
		return regs
	}

	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(sparkplugGateway, devProxy.Addr(), srv.Addr, brokerProxy.Addr(), version, group))
	p := start(t, dir, nil, "-config", "gateway.yaml")

	// Births: the node's with bdSeq and Rebirth, the device's with every
	// point, its datatype, unit, value and quality.
	nb, db, _ := births(t, h, 0)
	require.NotNil(t, nb.BdSeq, "NBIRTH bdSeq")
	bdSeq := *nb.BdSeq
	require.NotNil(t, nb.Seq)
	assert.Equal(t, uint64(0), *nb.Seq)
	rb, ok := nb.Metric("Node Control/Rebirth")
	require.True(t, ok)
	assert.Equal(t, "Boolean", rb.Datatype)
	checkBirth(t, db, false)
	// Aliases are unique across the edge node: py2's temp and flags are
	// other metrics than py's, with other aliases.
	db2, _ := h.Wait(t, 0, "DBIRTH of py2", func(m sparkplughost.Message) bool { return m.Type == "DBIRTH" && m.Device == "py2" })
	aliases := map[uint64]string{}
	for _, b := range []sparkplughost.Message{db, db2} {
		for _, m := range b.Metrics {
			require.NotNil(t, m.Alias, "%s/%s", b.Device, m.Name)
			prev, dup := aliases[*m.Alias]
			assert.False(t, dup, "alias %d of %s/%s is %s's too", *m.Alias, b.Device, m.Name, prev)
			aliases[*m.Alias] = b.Device + "/" + m.Name
		}
	}
	assert.Len(t, aliases, 9)

	// Rebirth on NCMD: NBIRTH again with the same bdSeq (no reconnect),
	// seq 0, and the DBIRTH after it.
	mark := h.Len()
	h.Rebirth(t, "gw1")
	nb, _, next := births(t, h, mark)
	require.NotNil(t, nb.BdSeq)
	assert.Equal(t, bdSeq, *nb.BdSeq, "a rebirth keeps the session's bdSeq")
	require.NotNil(t, nb.Seq)
	assert.Equal(t, uint64(0), *nb.Seq)

	// DCMD by alias: the write reaches pymodbus and comes back as DDATA.
	h.DCMD(t, "gw1", "py", sparkplughost.Command{Name: "temp", By: "alias", Type: "Float", Value: 42.5})
	ddataOf(t, h, next, "temp", floatIs(42.5))
	assert.Equal(t, float32Words(42.5), holding(0, 2))
	// By name, a coil.
	h.DCMD(t, "gw1", "py", sparkplughost.Command{Name: "relay", Type: "Boolean", Value: false})
	ddataOf(t, h, next, "relay", func(m sparkplughost.Metric) bool { b, err := m.Bool(); return err == nil && !b })
	coils, err := mb.ReadBits(ctx, 1, modbus.Coil, 3, 1)
	require.NoError(t, err)
	assert.Equal(t, []bool{false}, coils)
	// Refused: a point that is not writable, a value above max. Then a
	// good write, after which the refused ones must have left the device
	// alone.
	h.DCMD(t, "gw1", "py", sparkplughost.Command{Name: "flags", By: "alias", Type: "UInt16", Value: 5})
	h.DCMD(t, "gw1", "py", sparkplughost.Command{Name: "temp", By: "alias", Type: "Float", Value: 150.0})
	h.DCMD(t, "gw1", "py", sparkplughost.Command{Name: "limit", By: "alias", Type: "Int16", Value: 9})
	ddataOf(t, h, next, "limit", floatIs(9))
	assert.Equal(t, []uint16{9}, holding(10, 1))
	assert.Equal(t, []uint16{0xA005}, holding(20, 1), "a DCMD to a point that is not writable is never written")
	assert.Equal(t, float32Words(42.5), holding(0, 2), "a DCMD above max is never written")
	refused := regexp.MustCompile(`DCMD refused" .*device=py metric=flags err=".*not writable.*\n(?s:.*)DCMD refused" .*device=py metric=temp err=".*above max 100`)
	require.Eventually(t, func() bool { return refused.MatchString(p.log()) }, 10*time.Second, 20*time.Millisecond,
		"the refusals are logged with the reason")

	// The device goes away (the proxy resets its connections and refuses
	// new ones, as a device switched off would): DDEATH; it comes back:
	// DBIRTH. py2, on the same pymodbus but not behind the proxy, lives on.
	mark = h.Len()
	devProxy.Cut()
	_, i := h.Wait(t, mark, "DDEATH of py", func(m sparkplughost.Message) bool { return m.Type == "DDEATH" && m.Device == "py" })
	devProxy.Restore()
	h.Wait(t, i+1, "DBIRTH of py again", func(m sparkplughost.Message) bool { return m.Type == "DBIRTH" && m.Device == "py" })
	for _, m := range h.Messages()[mark:] {
		assert.False(t, m.Device == "py2" && m.Type == "DDEATH", "py2 answered throughout: %s", m.Topic)
	}

	// The broker connection is cut: the broker sends the Will (the NDEATH
	// with this session's bdSeq). What is read meanwhile is spooled and
	// replayed after the next births with is_historical.
	mark = h.Len()
	cut := time.Now()
	brokerProxy.Cut()
	death, _ := h.Wait(t, mark, "NDEATH (the Will)", func(m sparkplughost.Message) bool { return m.Type == "NDEATH" })
	require.NotNil(t, death.BdSeq)
	assert.Equal(t, bdSeq, *death.BdSeq, "the Will carries the bdSeq of its NBIRTH")
	assert.False(t, death.Stale)
	require.NoError(t, mb.WriteRegisters(ctx, 1, 0, float32Words(55.5)))
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "samples.jsonl"))
		return strings.Contains(string(b), `{"source":"py","point":"temp","value":55.5,`)
	}, 30*time.Second, 20*time.Millisecond, "the gateway read temp=55.5 while the broker was away")
	brokerProxy.Restore()
	nb, _, next = births(t, h, mark)
	require.NotNil(t, nb.BdSeq)
	// One more per CONNECT: attempts the proxy refused while cut count too.
	assert.NotEqual(t, bdSeq, *nb.BdSeq, "a new connection, a new bdSeq")
	bdSeq = *nb.BdSeq
	hist, _ := ddataOf(t, h, next, "temp", func(m sparkplughost.Metric) bool {
		f, err := m.Float()
		return err == nil && f == 55.5 && m.IsHistorical
	})
	// Measured while the edge node was away: after the cut, before the
	// NBIRTH of the new connection.
	require.NotNil(t, hist.Timestamp)
	require.NotNil(t, nb.Timestamp)
	assert.GreaterOrEqual(t, int64(*hist.Timestamp), cut.UnixMilli()-1)
	assert.LessOrEqual(t, *hist.Timestamp, *nb.Timestamp)

	// kill -9: the broker sends the Will.
	mark = h.Len()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	p.wait(t, 30*time.Second)
	death, _ = h.Wait(t, mark, "NDEATH after kill -9", func(m sparkplughost.Message) bool { return m.Type == "NDEATH" })
	require.NotNil(t, death.BdSeq)
	assert.Equal(t, bdSeq, *death.BdSeq)
	assert.False(t, death.Stale)

	// Restarted on the same state_dir: bdSeq goes on from the last
	// session's; a graceful stop publishes NDEATH before it disconnects.
	mark = h.Len()
	p = start(t, dir, nil, "-config", "gateway.yaml")
	nb, _, _ = births(t, h, mark)
	require.NotNil(t, nb.BdSeq)
	assert.Equal(t, (bdSeq+1)%256, *nb.BdSeq, "bdSeq persisted across the restart")
	bdSeq = *nb.BdSeq
	mark = h.Len()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, p.wait(t, 60*time.Second), p.log())
	death, _ = h.Wait(t, mark, "NDEATH on a graceful stop", func(m sparkplughost.Message) bool { return m.Type == "NDEATH" })
	require.NotNil(t, death.BdSeq)
	assert.Equal(t, bdSeq, *death.BdSeq)
	// One NDEATH, not the edge node's and the Will too: a marker the host
	// publishes after the gateway exited comes after anything the broker
	// routed for it.
	h.Rebirth(t, "marker")
	_, end := h.Wait(t, mark, "the marker", func(m sparkplughost.Message) bool { return m.Type == "NCMD" && m.Node == "marker" })
	deaths := 0
	for _, m := range h.Messages()[mark:end] {
		if m.Type == "NDEATH" {
			deaths++
		}
	}
	assert.Equal(t, 1, deaths, "NDEATHs after the graceful stop")

	h.RequireNoViolations(t)
	assert.Empty(t, h.Errors())
}

// logMessages logs, when the test fails, the last messages the host saw,
// one line each, and writes all of them, as JSON lines, to a file it names.
func logMessages(t *testing.T, h *sparkplughost.Host) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		msgs := h.Messages()
		if f, err := os.CreateTemp("", "sparkplug-interop-*.jsonl"); err == nil {
			enc := json.NewEncoder(f)
			for _, m := range msgs {
				_ = enc.Encode(m)
			}
			f.Close()
			t.Logf("all %d messages the Sparkplug host saw: %s", len(msgs), f.Name())
		}
		if len(msgs) > 100 {
			msgs = msgs[len(msgs)-100:]
		}
		var b strings.Builder
		for _, m := range msgs {
			ms, _ := json.Marshal(m.Metrics)
			seq := "-"
			if m.Seq != nil {
				seq = fmt.Sprint(*m.Seq)
			}
			fmt.Fprintf(&b, "%s seq=%s %s\n", m.Topic, seq, ms)
		}
		t.Logf("the last messages the Sparkplug host saw:\n%s", b.String())
	})
}

// TestSparkplugInteropPrimaryHost has the host application play the primary
// host: the edge node connects but is not born until the host's STATE says
// online; a STATE offline (newer) makes it publish its NDEATH and
// disconnect, an older one is ignored; what is read while the host is away
// is replayed as historical once it is back.
func TestSparkplugInteropPrimaryHost(t *testing.T) {
	sparkplughost.Require(t)
	broker := testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	srv := pymodbus.StartTCP(t, sparkplugSetup)
	group := fmt.Sprintf("m2mb-interop-%d", time.Now().UnixNano())
	hostID := fmt.Sprintf("scada-%d", time.Now().UnixNano())
	h := sparkplughost.Start(t, "tcp://"+broker, group)
	logMessages(t, h)
	t.Cleanup(func() { h.ClearState(t, hostID) }) // before the host stops
	mb, err := modbus.NewClient(modbus.ClientConfig{URL: "tcp://" + srv.Addr})
	require.NoError(t, err)
	defer mb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dir := t.TempDir()
	cfg := fmt.Sprintf(sparkplugGateway, srv.Addr, srv.Addr, broker, 5, group)
	cfg = strings.Replace(cfg, "commands: true}", "commands: true, primary_host_id: "+hostID+"}", 1)
	writeConfig(t, dir, cfg)
	p := start(t, dir, nil, "-config", "gateway.yaml")
	require.Eventually(t, func() bool { return strings.Contains(p.log(), "waiting for the primary host") },
		30*time.Second, 20*time.Millisecond, "the edge node connects and waits")
	// Not born while the host has said nothing: the first NBIRTH comes
	// after a marker published once the edge node waits.
	h.Rebirth(t, "marker")
	_, marker := h.Wait(t, 0, "the marker", func(m sparkplughost.Message) bool { return m.Type == "NCMD" && m.Node == "marker" })
	ts := time.Now().UnixMilli()
	h.State(t, hostID, true, ts)
	nb, _, _ := births(t, h, 0)
	for _, m := range h.Messages()[:marker] {
		assert.NotEqual(t, "NBIRTH", m.Type, "born before the primary host was online")
	}
	require.NotNil(t, nb.BdSeq)
	bdSeq := *nb.BdSeq

	// An older STATE offline is ignored.
	mark := h.Len()
	h.State(t, hostID, false, ts-1000)
	require.Eventually(t, func() bool { return strings.Contains(p.log(), "stale STATE ignored") },
		30*time.Second, 20*time.Millisecond)
	// A newer one: NDEATH, disconnect; the data waits.
	h.State(t, hostID, false, ts+1)
	death, _ := h.Wait(t, mark, "NDEATH on the host's offline", func(m sparkplughost.Message) bool { return m.Type == "NDEATH" })
	require.NotNil(t, death.BdSeq)
	assert.Equal(t, bdSeq, *death.BdSeq)
	require.NoError(t, mb.WriteRegisters(ctx, 1, 0, float32Words(66.5)))
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "samples.jsonl"))
		return strings.Contains(string(b), `{"source":"py","point":"temp","value":66.5,`)
	}, 30*time.Second, 20*time.Millisecond, "the gateway read temp=66.5 while the host was away")

	// Back online: born again, and what was read meanwhile is historical.
	mark = h.Len()
	h.State(t, hostID, true, ts+2)
	nb, _, next := births(t, h, mark)
	require.NotNil(t, nb.BdSeq)
	assert.NotEqual(t, bdSeq, *nb.BdSeq, "a new connection, a new bdSeq")
	ddataOf(t, h, next, "temp", func(m sparkplughost.Metric) bool {
		f, err := m.Float()
		return err == nil && f == 66.5 && m.IsHistorical
	})
	h.RequireNoViolations(t)
}
