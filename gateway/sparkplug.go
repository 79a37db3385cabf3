package gateway

import (
	"fmt"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug"
	"github.com/m2mbridge/m2mbridge/internal/redact"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// Points returns the configured points of a Modbus device, nil for other
// devices: the sparkplug sink finds a device through the bridge
// (bridge.Bridge.Source) and announces each point with the Sparkplug
// datatype of its declared type (float32 → Float, uint16 → UInt16) rather
// than of its value's kind.
func (s deviceSource) Points() []modbus.Point {
	if s.dev.mb != nil {
		return s.dev.mb.Points()
	}
	return nil
}

// The sparkplug sink kind: a Sparkplug B edge node (bridge/sparkplug). Its
// settings are sparkplug.Config, decoded and checked by that package; the
// password comes from password_env or password_file, and the TLS files
// and state_dir are relative to the configuration file. The gateway's
// bridge hands itself to the sink (bridge.BridgeUser), which reads the
// devices' health from it (DDEATH, DBIRTH) and writes DCMDs through it when
// commands is true.
func init() {
	RegisterSink("sparkplug", SinkKind{
		Config:  func() any { return new(sparkplug.Config) },
		Secrets: []string{"password"},
		Prepare: func(cfg any, env SinkEnv) {
			c := cfg.(*sparkplug.Config)
			c.Password = env.Secrets["password"]
			c.CAFile, c.CertFile, c.KeyFile = env.Path(c.CAFile), env.Path(c.CertFile), env.Path(c.KeyFile)
			c.StateDir = env.Path(c.StateDir)
			c.Logger = env.Logger
		},
		Build: func(cfg any, _ SinkEnv) (bridge.Sink, error) { return sparkplug.New(*cfg.(*sparkplug.Config)) },
		Describe: func(cfg any, _ SinkEnv) string {
			c := cfg.(*sparkplug.Config)
			d := fmt.Sprintf("sparkplug %s spBv1.0/%s/+/%s state_dir %s", redact.URL(c.URL), c.GroupID, c.EdgeNodeID, c.StateDir)
			if c.PrimaryHostID != "" {
				d += " primary host " + c.PrimaryHostID
			}
			if c.Commands {
				d += " (DCMD writes)"
			}
			return d
		},
	})
}
