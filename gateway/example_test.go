package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/gateway"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// recorderConfig is the settings of the example's own sink kind.
type recorderConfig struct {
	Label string `yaml:"label"`
}

// Validate checks the settings; the gateway reports each field error at the
// line of its key ("sinks[0].recorder.label").
func (c recorderConfig) Validate() error {
	if c.Label == "" {
		return &bridge.FieldError{Path: "label", Msg: "required", Hint: "label: kitchen"}
	}
	return nil
}

// Example embeds the gateway: a program registers its own sink kind, loads
// a configuration that uses it, builds the gateway and polls a simulated
// meter once into it.
func Example() {
	// A meter with two points, simulated on 127.0.0.1.
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "meter", Points: []modbus.Point{
		{Name: "voltage", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
		{Name: "current", Table: modbus.Input, Address: 2, Type: modbus.Float32, Unit: "A"},
	}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	// The program's own sink kind, configured from the same file.
	var mu sync.Mutex
	var lines []string
	gateway.RegisterSink("recorder", gateway.SinkKind{
		Config: func() any { return new(recorderConfig) },
		Build: func(cfg any, env gateway.SinkEnv) (bridge.Sink, error) {
			c := cfg.(*recorderConfig) // validated
			return bridge.SinkFunc(func(ctx context.Context, batch []bridge.Sample) error {
				mu.Lock()
				defer mu.Unlock()
				for _, s := range batch {
					lines = append(lines, fmt.Sprintf("%s: %s/%s %s %s", c.Label, s.Source, s.Point, s.Unit, s.Quality))
				}
				return nil
			}), nil
		},
		Describe: func(cfg any, env gateway.SinkEnv) string { return "recorder " + cfg.(*recorderConfig).Label },
	})

	cfg, err := gateway.Parse("example.yaml", []byte(`
devices:
  - name: meter1
    modbus: {url: `+srv.URL()+`}
    points:
      - {name: voltage, table: input, address: 0, type: float32, unit: V}
      - {name: current, table: input, address: 2, type: float32, unit: A}
sinks:
  - recorder: {label: commissioning}
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Check().Sinks[0].Desc)

	g, err := cfg.Build(gateway.BuildOptions{Once: true})
	if err != nil {
		panic(err)
	}
	if err := g.Run(context.Background()); err != nil {
		panic(err)
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// recorder commissioning
	// commissioning: meter1/current A good
	// commissioning: meter1/voltage V good
}

// ExampleParse shows the errors of a configuration: every mistake at once,
// each with its file, line and key path.
func ExampleParse() {
	_, err := gateway.Parse("gateway.yaml", []byte(`
devices:
  - name: meter1
    interval: 5
    modbus: {url: tcp://127.0.0.1:502, slave_id: 3}
    points:
      - {name: voltage, table: input, adress: 0, type: flaot32}
sinks:
  - stdot: {}
`))
	var ce *gateway.ConfigError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if errors.As(e, &ce) {
			fmt.Printf("line %d: %s: %s\n", ce.Line, ce.Path, ce.Msg)
		}
	}
	// Output:
	// line 4: devices[0].interval: 5 has no unit: write a duration such as 5ms or 5s
	// line 5: devices[0].modbus.slave_id: unknown key; the unit (slave) id is unit, in the device's modbus block: modbus: {url: tcp://10.0.0.7:502, unit: 1}
	// line 7: devices[0].points[0].adress: unknown key; did you mean "address"?
	// line 7: devices[0].points[0].type: unknown type "flaot32" (want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string)
	// line 9: sinks[0]: unknown sink "stdot"; did you mean "stdout"?
}
