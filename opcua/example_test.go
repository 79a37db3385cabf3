package opcua_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/opcua"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// A configuration is data: it loads from YAML, and New checks all of it
// before anything is dialled.
func ExampleParseConfig() {
	cfg, err := opcua.ParseConfig([]byte(`
name: plc1
endpoint: opc.tcp://127.0.0.1:4840
mode: subscribe
interval: 500ms
nodes:
  - name: temperature
    node: "nsu=urn:plant;s=Temperature"
    deadband: absolute
    deadband_value: 0.5
  - name: state
    node: "ns=2;i=1001"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := opcua.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(src.Name(), cfg.Mode, cfg.Interval, len(cfg.Nodes))
	// Output: plc1 subscribe 500ms 2
}

// New reports every problem at once, naming the field and the node.
func ExampleNew_invalid() {
	_, err := opcua.New(opcua.Config{
		Name:     "plc1",
		Endpoint: "opc.tcp://127.0.0.1:4840",
		Nodes: []opcua.Node{
			{Name: "temperature", Node: "ns=2;s=Temperature", Deadband: "relative"},
			{Name: "temperature", Node: "ns=two;i=1"},
		},
	})
	fmt.Println(err)
	// Output:
	// opcua: source plc1: invalid config: nodes[0].deadband: unknown deadband "relative": want none, absolute or percent
	// nodes[1].name: "temperature" is already used by nodes[0]
	// nodes[1].node: "ns=two;i=1": invalid namespace id: ns=two;i=1
}

// A Source runs as a bridge.Source: here it polls the in-process test
// server once a tick into a recording sink, and the program stops it once
// every node gave a reading.
func ExampleSource() {
	srv, err := opcuatest.New(opcuatest.Options{Interval: -1}) // values move only on Tick
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	srv.Tick()
	_ = srv.Set(opcuatest.Setpoint, 21.5)

	src, err := opcua.New(opcua.Config{
		Name:     "plc1",
		Endpoint: srv.URL(),
		Mode:     opcua.Poll,
		Interval: 50 * time.Millisecond,
		Nodes: []opcua.Node{
			{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)},
			{Name: "setpoint", Node: opcuatest.NodeID(opcuatest.Setpoint)},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	first := map[string]bridge.Sample{}
	sink := bridge.SinkFunc(func(_ context.Context, batch []bridge.Sample) error {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range batch {
			if _, ok := first[s.Point]; !ok {
				first[s.Point] = s
			}
		}
		if len(first) == 2 {
			cancel() // every node read once: stop
		}
		return nil
	})
	b := bridge.New(bridge.Options{Logger: slog.New(slog.DiscardHandler)})
	_ = b.AddSource("plc1", src)
	_ = b.AddSink("print", sink, bridge.SinkOptions{})
	_ = b.Run(ctx)
	for _, name := range []string{"counter", "setpoint"} {
		s := first[name]
		fmt.Printf("%s/%s = %s (%s)\n", s.Source, s.Point, s.Value, s.Quality)
	}
	fmt.Println("health after stop:", src.Health().Up)
	// Output:
	// plc1/counter = 1 (good)
	// plc1/setpoint = 21.5 (good)
	// health after stop: false
}

// Writes are denied by default: a node takes them only with writable: true,
// within its min and max, and as a value its data type holds exactly. A
// write is read back; the bridge (bridge.Bridge.Write) emits that sample.
func ExampleSource_Write() {
	srv, err := opcuatest.New(opcuatest.Options{Interval: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	cfg, err := opcua.ParseConfig([]byte(`
name: plc1
endpoint: ` + srv.URL() + `
mode: poll
interval: 1h
nodes:
  - {name: setpoint, node: "ns=1;s=Setpoint", writable: true, min: 0, max: 80}
  - {name: mode, node: "ns=1;s=Mode", writable: true, allowed: [0, 1, 2]}
  - {name: counter, node: "ns=1;s=Counter"}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := opcua.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx, bridge.EmitterFunc(func(context.Context, []bridge.Sample) error { return nil }))
	}()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); !src.Health().Up && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting a fixed time
	}

	s, err := src.Write(ctx, "setpoint", bridge.Float(42.5))
	fmt.Println(s.Point, s.Value, s.Quality, err)
	for _, w := range []struct {
		point string
		v     bridge.Value
	}{
		{"setpoint", bridge.Int(95)},
		{"mode", bridge.Float(1.5)},
		{"mode", bridge.Int(3)},
		{"counter", bridge.Int(0)},
	} {
		_, err := src.Write(ctx, w.point, w.v)
		fmt.Println(err)
	}
	// Output:
	// setpoint 42.5 good <nil>
	// setpoint: 95 is above max 80: out of range
	// mode: 1.5 is not one of the allowed values 0, 1, 2: out of range
	// mode: 3 is not one of the allowed values 0, 1, 2: out of range
	// counter: writes are not allowed (the node is not configured writable: true): not writable
}
