// Package sparkplughost runs a Sparkplug B host application nobody here
// wrote the decoder of, for the interop tests of the Sparkplug edge node
// (issue 13): [Start] runs .ci/sparkplug-host/host.js, which subscribes to
// spBv1.0/{group}/# on an MQTT broker, decodes every payload with Eclipse
// Tahu's sparkplug-payload (npm, 1.0.3) and checks the Sparkplug rules from
// the wire. A test reads what it saw as [Message] values, the rules broken
// as [Violation] values, and sends it commands: an NCMD rebirth, an NCMD or
// DCMD by metric name or alias, a primary host's STATE.
//
// The rules host.js checks, per edge node (rule names in [Violation.Rule]):
//
//   - qos, retain: NBIRTH, DBIRTH, NDATA, DDATA and DDEATH are QoS 0 and not
//     retained; the NDEATH Will is delivered with QoS 1, not retained.
//   - timestamp: every message but NDEATH has a payload timestamp.
//   - nbirth-seq, seq, ndeath-seq: NBIRTH has seq 0, each later NBIRTH,
//     DBIRTH, NDATA, DDATA and DDEATH one more, 255 followed by 0; NDEATH
//     has no seq.
//   - nbirth-bdseq, nbirth-rebirth: NBIRTH has a bdSeq metric (Int64) and a
//     Node Control/Rebirth metric (Boolean false).
//   - ndeath-bdseq: the NDEATH (the Will the broker delivers) carries the
//     bdSeq of the current NBIRTH; one of an earlier session is marked
//     [Message.Stale], not a violation.
//   - metric-name, name-unique, metric-datatype, value-missing: every
//     metric of a birth has a unique name, a Sparkplug datatype and a value
//     or is_null.
//   - value-field, value-range: a value is in the protobuf field its
//     datatype uses (UInt32 in int_value or long_value), and an Int8,
//     Int16, UInt8 or UInt16 in int_value is within its range (a negative
//     one sign-extended to 32 bits).
//   - alias-unique: an alias names one metric across the edge node (its
//     own metrics and every device's).
//   - not-born, data-unknown-metric, data-alias, data-datatype: data and
//     deaths follow their births; data names born metrics, by alias alone
//     where the birth gave one, with the birth's datatype if it repeats one.
//     A host that joins after the edge node was born judges these from the
//     next NBIRTH on ([Message.BeforeBirth]); [Host.Rebirth] asks for it.
//   - quality-type: a "Quality" property is an Int32.
//   - historical-timestamp: a metric with is_historical has a timestamp.
//   - decode, topic: the payload is not a Sparkplug B payload, or the topic
//     not a Sparkplug topic.
//
// It is imported by tests only. The peer is node on PATH and the npm
// packages installed into .ci/sparkplug-host/node_modules (npm ci there). A
// test without it is skipped, or failed when M2MB_INTEROP=1.
//
// A Host's methods may be called from any goroutine.
package sparkplughost

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// Timeout bounds every wait of a Host: for the script to connect, for a
// message, for a command to be published.
const Timeout = 30 * time.Second

// Require returns the node binary and the folder of host.js, skipping the
// test when the peer is missing (failing it under M2MB_INTEROP=1).
func Require(tb testing.TB) (node, dir string) {
	tb.Helper()
	return testproxy.NodePeer(tb, "sparkplug-host", "Sparkplug host", "sparkplug-payload", "mqtt")
}

// Message is one message of the group as host.js decoded it.
type Message struct {
	Topic string `json:"topic"`
	// Type is the message type of the topic: NBIRTH, NDEATH, NDATA, NCMD,
	// DBIRTH, DDEATH, DDATA or DCMD.
	Type   string `json:"type"`
	Group  string `json:"group"`
	Node   string `json:"node"`
	Device string `json:"device"`
	// QoS and Retain are as the broker delivered them; host.js subscribes
	// with QoS 1 and retain-as-published, so they are the publisher's.
	QoS    int  `json:"qos"`
	Retain bool `json:"retain"`
	// Received is when host.js got it, in ms since the epoch.
	Received int64 `json:"received"`
	// Timestamp and Seq are the payload's, nil when absent.
	Timestamp *uint64 `json:"timestamp"`
	Seq       *uint64 `json:"seq"`
	// BdSeq is the value of the bdSeq metric of an NBIRTH or NDEATH;
	// BirthBdSeq, on an NDEATH, the bdSeq of the NBIRTH host.js holds for
	// the node. Stale marks an NDEATH of an earlier session.
	BdSeq      *int64 `json:"bdSeq"`
	BirthBdSeq *int64 `json:"birth_bdSeq"`
	Stale      bool   `json:"stale"`
	// BeforeBirth marks a message of an edge node whose NBIRTH host.js
	// has not seen (it joined late): such messages are checked on their
	// own, not against a birth, until the next NBIRTH.
	BeforeBirth bool `json:"before_birth"`
	// Cleared marks a zero-length retained message, which deletes a
	// retained message at the broker and is not judged.
	Cleared bool `json:"cleared"`
	Metrics []Metric
	// Error says why the payload could not be decoded.
	Error string `json:"error"`
}

// Metric is one metric of a [Message].
type Metric struct {
	// Name is the name on the wire, empty when the metric came by alias
	// alone (HasName false); Metric is the name of the born metric it
	// refers to (for data, resolved from the alias of the birth).
	Name    string  `json:"name"`
	HasName bool    `json:"-"`
	Metric  string  `json:"metric"`
	Alias   *uint64 `json:"alias"`
	// Datatype is the Sparkplug datatype by name ("Float", "UInt32"), empty
	// when the metric has none (data may leave it out).
	Datatype     string  `json:"datatype"`
	Timestamp    *uint64 `json:"timestamp"`
	IsHistorical bool    `json:"is_historical"`
	IsTransient  bool    `json:"is_transient"`
	IsNull       bool    `json:"is_null"`
	// Value is the value as JSON: a number (64-bit integers exact), a
	// boolean, a string, or null. Field is the protobuf field it was in
	// ("int_value", "long_value", "float_value", ...).
	Value      json.RawMessage     `json:"value"`
	Field      string              `json:"field"`
	Properties map[string]Property `json:"properties"`
}

// Property is one entry of a metric's property set.
type Property struct {
	Type   string          `json:"type"`
	Value  json.RawMessage `json:"value"`
	Field  string          `json:"field"`
	IsNull bool            `json:"is_null"`
}

// UnmarshalJSON records whether the name was on the wire.
func (m *Metric) UnmarshalJSON(b []byte) error {
	type plain Metric
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var names struct {
		Name *string `json:"name"`
	}
	if err := json.Unmarshal(b, &names); err != nil {
		return err
	}
	*m = Metric(p)
	m.HasName = names.Name != nil
	return nil
}

// Float returns the value as a float64, an error for a value that is not a
// number.
func (m Metric) Float() (float64, error) { return numberOf(m.Value).Float64() }

// Int returns the value as an int64, exactly; an error for a value that is
// not an integer or does not fit.
func (m Metric) Int() (int64, error) { return strconv.ParseInt(string(m.Value), 10, 64) }

// Uint returns the value as a uint64, exactly.
func (m Metric) Uint() (uint64, error) { return strconv.ParseUint(string(m.Value), 10, 64) }

// Bool returns a Boolean value.
func (m Metric) Bool() (bool, error) {
	var b bool
	err := json.Unmarshal(m.Value, &b)
	return b, err
}

// Str returns a String value.
func (m Metric) Str() (string, error) {
	var s string
	err := json.Unmarshal(m.Value, &s)
	return s, err
}

// Quality returns the Quality property's value, and false without one.
func (m Metric) Quality() (int64, bool) {
	p, ok := m.Properties["Quality"]
	if !ok {
		return 0, false
	}
	q, err := strconv.ParseInt(string(p.Value), 10, 64)
	return q, err == nil
}

func numberOf(v json.RawMessage) json.Number {
	s := string(v)
	switch s {
	case `"NaN"`:
		return json.Number(strconv.FormatFloat(math.NaN(), 'g', -1, 64))
	case `"Infinity"`, `"-Infinity"`:
		return json.Number(strings.Trim(s, `"`))
	}
	return json.Number(s)
}

// Metric returns the metric that refers to the born metric name (by name or
// by the alias of its birth), and false when there is none.
func (m Message) Metric(name string) (Metric, bool) {
	for _, x := range m.Metrics {
		if x.Metric == name {
			return x, true
		}
	}
	return Metric{}, false
}

// Violation is a Sparkplug rule a message broke (see the package doc for
// the rules).
type Violation struct {
	Rule   string `json:"rule"`
	Topic  string `json:"topic"`
	Type   string `json:"type"`
	Node   string `json:"node"`
	Device string `json:"device"`
	Detail string `json:"detail"`
}

func (v Violation) String() string { return v.Rule + ": " + v.Topic + ": " + v.Detail }

// Host is a running host.js. It is stopped when the test ends.
type Host struct {
	tb    testing.TB
	group string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu         sync.Mutex
	cond       *sync.Cond
	messages   []Message
	violations []Violation
	replies    map[string]reply
	errs       []string // lines host.js could not say or we could not read
	exited     bool
	stderr     bytes.Buffer
	nextID     int
	wg         sync.WaitGroup
}

type reply struct {
	topic string
	err   string
}

// Start runs host.js against the broker at url (tcp://host:port or
// mqtt://host:port) for the Sparkplug group, and returns once it is
// subscribed.
func Start(tb testing.TB, url, group string) *Host {
	tb.Helper()
	node, dir := Require(tb)
	url = strings.Replace(url, "tcp://", "mqtt://", 1)
	if !strings.Contains(url, "://") {
		url = "mqtt://" + url
	}
	cmd := exec.Command(node, filepath.Join(dir, "host.js"), "--url", url, "--group", group)
	cmd.Dir = dir
	h := &Host{tb: tb, group: group, cmd: cmd, replies: map[string]reply{}}
	h.cond = sync.NewCond(&h.mu)
	stdout, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	h.stdin, err = cmd.StdinPipe()
	require.NoError(tb, err)
	cmd.Stderr = lockedWriter{h}
	require.NoError(tb, cmd.Start())
	ready := make(chan struct{})
	h.wg.Add(1)
	go h.read(stdout, ready)
	tb.Cleanup(h.Stop)
	select {
	case <-ready:
	case <-time.After(Timeout):
		h.Stop()
		tb.Fatalf("sparkplug host did not connect to %s: %s", url, h.Stderr())
	}
	return h
}

type lockedWriter struct{ h *Host }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	return w.h.stderr.Write(p)
}

// Stderr returns what host.js wrote on stderr so far.
func (h *Host) Stderr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stderr.String()
}

// read parses host.js's lines until it exits.
func (h *Host) read(stdout io.Reader, ready chan struct{}) {
	defer h.wg.Done()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var head struct {
			Kind   string `json:"kind"`
			ID     string `json:"id"`
			Topic  string `json:"topic"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			h.fail(fmt.Sprintf("unreadable line %q: %v", line, err))
			continue
		}
		switch head.Kind {
		case "ready":
			if ready != nil {
				close(ready)
				ready = nil
			}
		case "message":
			var m Message
			if err := json.Unmarshal(line, &m); err != nil {
				h.fail(fmt.Sprintf("unreadable message %q: %v", line, err))
				continue
			}
			h.mu.Lock()
			h.messages = append(h.messages, m)
			h.cond.Broadcast()
			h.mu.Unlock()
		case "violation":
			var v Violation
			if err := json.Unmarshal(line, &v); err != nil {
				h.fail(fmt.Sprintf("unreadable violation %q: %v", line, err))
				continue
			}
			h.mu.Lock()
			h.violations = append(h.violations, v)
			h.cond.Broadcast()
			h.mu.Unlock()
		case "sent", "error":
			if head.ID == "" {
				h.fail(head.Kind + ": " + head.Detail)
				continue
			}
			h.mu.Lock()
			h.replies[head.ID] = reply{topic: head.Topic, err: head.Detail}
			h.cond.Broadcast()
			h.mu.Unlock()
		default:
			h.fail(fmt.Sprintf("line of unknown kind %q", line))
		}
	}
	h.mu.Lock()
	h.exited = true
	h.cond.Broadcast()
	h.mu.Unlock()
}

func (h *Host) fail(s string) {
	h.mu.Lock()
	h.errs = append(h.errs, s)
	h.cond.Broadcast()
	h.mu.Unlock()
}

// Stop ends host.js: it closes its stdin, which makes it disconnect, and
// kills it if it has not exited within Timeout. It may be called more than
// once.
func (h *Host) Stop() {
	h.mu.Lock()
	cmd := h.cmd
	h.cmd = nil
	h.mu.Unlock()
	if cmd == nil {
		return
	}
	h.stdin.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(Timeout):
		cmd.Process.Kill()
		<-done
	}
	h.wg.Wait()
}

// Len is the number of messages seen so far: a mark for [Host.Wait] to
// look only at what comes after it.
func (h *Host) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.messages)
}

// Messages returns a copy of every message seen so far, in order.
func (h *Host) Messages() []Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Message(nil), h.messages...)
}

// Violations returns the rules broken so far, in order. host.js reports a
// message's violations before the message itself, so once [Host.Wait] has
// returned a message, the rules it broke are here.
func (h *Host) Violations() []Violation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Violation(nil), h.violations...)
}

// Errors returns the errors host.js reported outside of any command (MQTT
// errors) and lines it wrote that could not be read.
func (h *Host) Errors() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.errs...)
}

// RequireNoViolations fails the test with every rule broken so far.
func (h *Host) RequireNoViolations(tb testing.TB) {
	tb.Helper()
	vs := h.Violations()
	if len(vs) == 0 {
		return
	}
	var b strings.Builder
	for _, v := range vs {
		b.WriteString("\n  " + v.String())
	}
	tb.Fatalf("the Sparkplug host saw %d violations:%s", len(vs), b.String())
}

// Wait returns the first message at index from or later (see [Host.Len])
// for which match is true, with its index, waiting up to Timeout for it.
// It fails the test, naming what it waited for, when none comes or host.js
// exits.
func (h *Host) Wait(tb testing.TB, from int, what string, match func(Message) bool) (Message, int) {
	tb.Helper()
	m, i, ok := h.waitFor(from, Timeout, match)
	if !ok {
		tb.Fatalf("the Sparkplug host saw no %s in %v (%d messages, %d after index %d):\n%s\nviolations: %v\nstderr: %s",
			what, Timeout, h.Len(), max(h.Len()-from, 0), from, h.summary(from), h.Violations(), h.Stderr())
	}
	return m, i
}

// WaitViolation waits up to Timeout for a violation of rule and returns
// it, failing the test when none comes.
func (h *Host) WaitViolation(tb testing.TB, rule string) Violation {
	tb.Helper()
	deadline := time.Now().Add(Timeout)
	stop := time.AfterFunc(Timeout, func() { h.mu.Lock(); h.cond.Broadcast(); h.mu.Unlock() })
	defer stop.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		for _, v := range h.violations {
			if v.Rule == rule {
				return v
			}
		}
		if h.exited || !time.Now().Before(deadline) {
			tb.Fatalf("no %s violation in %v; violations: %v; stderr: %s", rule, Timeout, h.violations, h.stderr.String())
		}
		h.cond.Wait()
	}
}

func (h *Host) waitFor(from int, timeout time.Duration, match func(Message) bool) (Message, int, bool) {
	deadline := time.Now().Add(timeout)
	stop := time.AfterFunc(timeout, func() { h.mu.Lock(); h.cond.Broadcast(); h.mu.Unlock() })
	defer stop.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	i := from
	for {
		for ; i < len(h.messages); i++ {
			if match(h.messages[i]) {
				return h.messages[i], i, true
			}
		}
		if h.exited || !time.Now().Before(deadline) {
			return Message{}, 0, false
		}
		h.cond.Wait()
	}
}

// summary lists the messages from index from, one per line, for a
// failure: the last 60 of them.
func (h *Host) summary(from int) string {
	var b strings.Builder
	msgs := h.Messages()
	if n := len(msgs) - 60; from < n {
		fmt.Fprintf(&b, "  (%d left out)\n", n-from)
		from = n
	}
	for i, m := range msgs {
		if i < from {
			continue
		}
		seq := "-"
		if m.Seq != nil {
			seq = strconv.FormatUint(*m.Seq, 10)
		}
		fmt.Fprintf(&b, "  %d %s seq=%s metrics=%d\n", i, m.Topic, seq, len(m.Metrics))
	}
	return b.String()
}

// Command is a metric of an NCMD or DCMD.
type Command struct {
	// Name is the metric's name. By says how the command names it: "name"
	// (the default without Alias), "alias" (the alias of the metric's
	// birth, looked up by Name, or Alias itself) or "both".
	Name  string
	Alias *uint64
	By    string
	// Type is the Sparkplug datatype ("Float", "Int32", "UInt32",
	// "Boolean", ...). Value is the value, of a Go type that encodes to
	// JSON; a 64-bit integer is sent exactly.
	Type  string
	Value any
}

func (c Command) wire() map[string]any {
	m := map[string]any{"name": c.Name, "type": c.Type, "value": c.Value}
	switch v := c.Value.(type) {
	case int64:
		m["value"] = strconv.FormatInt(v, 10)
	case uint64:
		m["value"] = strconv.FormatUint(v, 10)
	}
	if c.Alias != nil {
		m["alias"] = strconv.FormatUint(*c.Alias, 10)
	}
	if c.By != "" {
		m["by"] = c.By
	}
	return m
}

// Rebirth publishes an NCMD with Node Control/Rebirth = true to the edge
// node, the request to publish its births again, and returns once it is
// sent.
func (h *Host) Rebirth(tb testing.TB, node string) {
	tb.Helper()
	require.NoError(tb, h.Send(map[string]any{"cmd": "rebirth", "node": node}))
}

// DCMD publishes a DCMD to device of the edge node with the metrics, and
// returns once it is sent.
func (h *Host) DCMD(tb testing.TB, node, device string, metrics ...Command) {
	tb.Helper()
	require.NoError(tb, h.Send(commandLine("dcmd", node, device, metrics)))
}

// NCMD publishes an NCMD to the edge node with the metrics, and returns
// once it is sent.
func (h *Host) NCMD(tb testing.TB, node string, metrics ...Command) {
	tb.Helper()
	require.NoError(tb, h.Send(commandLine("ncmd", node, "", metrics)))
}

func commandLine(kind, node, device string, metrics []Command) map[string]any {
	ms := make([]map[string]any, len(metrics))
	for i, m := range metrics {
		ms[i] = m.wire()
	}
	c := map[string]any{"cmd": kind, "node": node, "metrics": ms}
	if device != "" {
		c["device"] = device
	}
	return c
}

// State publishes the STATE of primary host id (spBv1.0/STATE/id, QoS 1,
// retained): {"online":online,"timestamp":ts} with ts in ms since the epoch.
// It returns once the broker has it.
func (h *Host) State(tb testing.TB, id string, online bool, ts int64) {
	tb.Helper()
	require.NoError(tb, h.Send(map[string]any{"cmd": "state", "host": id, "online": online, "timestamp": ts}))
}

// ClearState removes the retained STATE of primary host id from the broker.
func (h *Host) ClearState(tb testing.TB, id string) {
	tb.Helper()
	require.NoError(tb, h.Send(map[string]any{"cmd": "state", "host": id, "clear": true}))
}

// Send gives host.js one command line (see host.js) and waits until it is
// published; an error is host.js's reason for refusing it.
func (h *Host) Send(c map[string]any) error {
	h.mu.Lock()
	h.nextID++
	id := "c" + strconv.Itoa(h.nextID)
	h.mu.Unlock()
	line := map[string]any{"id": id}
	for k, v := range c {
		line[k] = v
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	if _, err := h.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("sparkplughost: writing a command: %w", err)
	}
	deadline := time.Now().Add(Timeout)
	stop := time.AfterFunc(Timeout, func() { h.mu.Lock(); h.cond.Broadcast(); h.mu.Unlock() })
	defer stop.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		if r, ok := h.replies[id]; ok {
			delete(h.replies, id)
			if r.err != "" {
				return errors.New("sparkplughost: " + r.err)
			}
			return nil
		}
		if h.exited {
			return fmt.Errorf("sparkplughost: host.js exited: %s", h.stderr.String())
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("sparkplughost: command %s not published in %v", b, Timeout)
		}
		h.cond.Wait()
	}
}
