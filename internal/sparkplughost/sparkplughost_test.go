package sparkplughost_test

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/sparkplughost"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

func broker(tb testing.TB) string {
	return "tcp://" + testproxy.PeerAddr(tb, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
}

func group(tb testing.TB) string {
	return fmt.Sprintf("m2mb-sphost-%d", time.Now().UnixNano())
}

// TestCommands runs host.js and has it publish commands, which it also
// receives (it subscribes to the whole group) and decodes: the launcher's
// round trip of command lines, sent replies and message lines, with 64-bit
// values exact both ways.
func TestCommands(t *testing.T) {
	sparkplughost.Require(t)
	url := broker(t)
	g := group(t)
	h := sparkplughost.Start(t, url, g)

	mark := h.Len()
	h.Rebirth(t, "gw1")
	m, _ := h.Wait(t, mark, "NCMD rebirth", func(m sparkplughost.Message) bool { return m.Type == "NCMD" })
	assert.Equal(t, "spBv1.0/"+g+"/NCMD/gw1", m.Topic)
	assert.Equal(t, g, m.Group)
	assert.Equal(t, "gw1", m.Node)
	assert.Empty(t, m.Device)
	rb, ok := m.Metric("Node Control/Rebirth")
	require.True(t, ok, "%+v", m)
	assert.Equal(t, "Boolean", rb.Datatype)
	b, err := rb.Bool()
	require.NoError(t, err)
	assert.True(t, b)
	require.NotNil(t, m.Timestamp)
	assert.InDelta(t, time.Now().UnixMilli(), int64(*m.Timestamp), float64(time.Minute.Milliseconds()))

	mark = h.Len()
	h.DCMD(t, "gw1", "meter1",
		sparkplughost.Command{Name: "u64", Type: "UInt64", Value: uint64(math.MaxUint64)},
		sparkplughost.Command{Name: "i64", Type: "Int64", Value: int64(math.MinInt64)},
		sparkplughost.Command{Name: "u32", Type: "UInt32", Value: uint32(4000000000)},
		sparkplughost.Command{Name: "f", Type: "Float", Value: 42.5},
		sparkplughost.Command{Name: "s", Type: "String", Value: "on"},
		sparkplughost.Command{Name: "b", Alias: ptr(uint64(7)), Type: "Boolean", Value: true},
	)
	m, _ = h.Wait(t, mark, "DCMD", func(m sparkplughost.Message) bool { return m.Type == "DCMD" })
	assert.Equal(t, "spBv1.0/"+g+"/DCMD/gw1/meter1", m.Topic)
	assert.Equal(t, "meter1", m.Device)
	require.Len(t, m.Metrics, 6)
	u64, err := m.Metrics[0].Uint()
	require.NoError(t, err)
	assert.Equal(t, uint64(math.MaxUint64), u64, "exact through JSON")
	assert.Equal(t, "long_value", m.Metrics[0].Field)
	i64, err := m.Metrics[1].Int()
	require.NoError(t, err)
	assert.Equal(t, int64(math.MinInt64), i64)
	u32, err := m.Metrics[2].Uint()
	require.NoError(t, err)
	assert.Equal(t, uint64(4000000000), u32)
	assert.Equal(t, "long_value", m.Metrics[2].Field, "Tahu's encoder puts a UInt32 in long_value")
	f, err := m.Metrics[3].Float()
	require.NoError(t, err)
	assert.Equal(t, 42.5, f)
	assert.Equal(t, "float_value", m.Metrics[3].Field)
	s, err := m.Metrics[4].Str()
	require.NoError(t, err)
	assert.Equal(t, "on", s)
	assert.True(t, m.Metrics[4].HasName)
	// By alias: the name is left out.
	assert.False(t, m.Metrics[5].HasName)
	require.NotNil(t, m.Metrics[5].Alias)
	assert.Equal(t, uint64(7), *m.Metrics[5].Alias)

	// Commands host.js refuses come back as errors naming what is wrong.
	err = h.Send(map[string]any{"cmd": "dcmd", "node": "gw1", "device": "meter1",
		"metrics": []map[string]any{{"name": "x", "by": "alias", "type": "Float", "value": 1}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no alias known for "x"`)
	err = h.Send(map[string]any{"cmd": "reboot", "node": "gw1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown cmd "reboot"`)
	err = h.Send(map[string]any{"cmd": "dcmd", "node": "gw1", "device": "meter1",
		"metrics": []map[string]any{{"name": "x", "type": "Float32", "value": 1}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `type "Float32" is not a Sparkplug datatype`)

	// Commands are not judged; nothing the host sent broke a rule.
	h.RequireNoViolations(t)
	assert.Empty(t, h.Errors())
	h.Stop()
	h.Stop()
}

func ptr[T any](v T) *T { return &v }

// TestTextFormat runs host.js as a person would (--format text, as the
// gateway README's walk-through does): one readable line per message.
func TestTextFormat(t *testing.T) {
	node, dir := sparkplughost.Require(t)
	url := broker(t)
	g := group(t)
	cmd := exec.Command(node, filepath.Join(dir, "host.js"), "--url", url, "--group", g, "--format", "text")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			require.True(t, ok, "host.js exited")
			return l
		case <-time.After(sparkplughost.Timeout):
			t.Fatal("no line from host.js")
		}
		return ""
	}
	assert.Equal(t, "ready", strings.Fields(next())[0])
	_, err = io.WriteString(stdin, `{"id":"r","cmd":"rebirth","node":"gw1"}`+"\n")
	require.NoError(t, err)
	got := []string{next(), next()}
	assert.ElementsMatch(t, []string{"sent r: spBv1.0/" + g + "/NCMD/gw1", "NCMD gw1: Node Control/Rebirth=true Boolean"}, got)
	// A Float is written as the float32 it is, not as its double.
	_, err = io.WriteString(stdin, `{"id":"d","cmd":"dcmd","node":"gw1","device":"m1","name":"x","type":"Float","value":0.1}`+"\n")
	require.NoError(t, err)
	got = []string{next(), next()}
	assert.ElementsMatch(t, []string{"sent d: spBv1.0/" + g + "/DCMD/gw1/m1", "DCMD gw1/m1: x=0.1 Float"}, got)
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait(), "host.js ends when its stdin does")
}
