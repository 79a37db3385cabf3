package opcua_test

import (
	"fmt"

	"github.com/m2mbridge/m2mbridge/opcua"
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
