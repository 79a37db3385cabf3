package gateway

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
	"github.com/m2mbridge/m2mbridge/bridge/nats"
	"github.com/m2mbridge/m2mbridge/internal/redact"
)

// CommandSource receives write commands from the IoT side (an MQTT or a
// NATS subscriber, say) and hands each to write ([bridge.Bridge.Write]): Run
// does so until ctx ends, reconnecting as it needs, and owns its
// goroutines.
type CommandSource interface {
	Run(ctx context.Context, write bridge.WriteFunc) error
}

// CommandKind is a kind of command source that a configuration can name in
// its commands list ("mqtt", "nats", or a program's own). It is decoded,
// prepared and validated as a SinkKind is; Build makes the source and must
// not dial.
//
//	commands:
//	  - mqtt: {url: tcp://127.0.0.1:1883}
type CommandKind struct {
	Config   func() any
	Secrets  []string
	Prepare  func(cfg any, env SinkEnv)
	Build    func(cfg any, env SinkEnv) (CommandSource, error)
	Describe func(cfg any, env SinkEnv) string
}

var commandRegistry struct {
	sync.RWMutex
	names []string
	kinds map[string]CommandKind
}

// RegisterCommands makes a command source kind available under the key
// kind, as RegisterSink does for sinks. It panics when kind is not a
// lower-case word or Build is nil.
func RegisterCommands(kind string, k CommandKind) {
	if !sinkKindRE.MatchString(kind) {
		panic(fmt.Sprintf("gateway: RegisterCommands: %q is not a lower-case key", kind))
	}
	if k.Build == nil {
		panic(fmt.Sprintf("gateway: RegisterCommands(%q): Build is nil", kind))
	}
	commandRegistry.Lock()
	defer commandRegistry.Unlock()
	if commandRegistry.kinds == nil {
		commandRegistry.kinds = make(map[string]CommandKind)
	}
	if _, ok := commandRegistry.kinds[kind]; !ok {
		commandRegistry.names = append(commandRegistry.names, kind)
	}
	commandRegistry.kinds[kind] = k
}

// CommandKinds returns the names of the registered command source kinds.
func CommandKinds() []string {
	commandRegistry.RLock()
	defer commandRegistry.RUnlock()
	return slices.Clone(commandRegistry.names)
}

func lookupCommands(kind string) (CommandKind, bool) {
	commandRegistry.RLock()
	defer commandRegistry.RUnlock()
	k, ok := commandRegistry.kinds[kind]
	return k, ok
}

// commandEntry is one configured command source.
type commandEntry struct {
	kind string
	desc string
	src  CommandSource
}

// buildCommands decodes the commands section: each item names its kind as
// its one key.
func (g *assembly) buildCommands(d *decoder, cfg *fileConfig, dir string) {
	kinds := CommandKinds()
	for i := range cfg.Commands {
		p := index("commands", i)
		n := resolve(&cfg.Commands[i])
		if n == nil || n.Kind != yaml.MappingNode || len(n.Content) != 2 {
			d.errAt(p, "want a mapping with one key, one of %s", strings.Join(kinds, ", "))
			continue
		}
		kind := n.Content[0].Value
		k, ok := lookupCommands(kind)
		if !ok {
			d.errorf(n.Content[0].Line, p, "unknown command source %s%s", strconv.Quote(kind), suggest(kind, kinds))
			continue
		}
		p = join(p, kind)
		c, env, ok := g.decodeKind(d, p, n.Content[1], dir, kind, k.Config, k.Secrets, k.Prepare)
		if !ok {
			continue
		}
		src, err := k.Build(c, env)
		if err != nil {
			d.fieldErrors(p, err)
			continue
		}
		desc := kind
		if k.Describe != nil {
			desc = k.Describe(c, env)
		}
		g.commands = append(g.commands, &commandEntry{kind: kind, desc: desc, src: src})
	}
}

// runCommands runs the command sources until ctx ends; the returned wait
// blocks until each has returned.
func (g *Gateway) runCommands(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for _, c := range g.a.commands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.log.Info("commands: listening", "via", c.desc)
			if err := c.src.Run(ctx, g.bridge.Write); err != nil && ctx.Err() == nil {
				g.log.Error("commands: stopped", "via", c.desc, "err", err)
			}
		}()
	}
	return wg.Wait
}

func init() {
	RegisterCommands("mqtt", CommandKind{
		Config:  func() any { return new(mqtt.CommandsConfig) },
		Secrets: []string{"password"},
		Prepare: func(cfg any, env SinkEnv) {
			c := cfg.(*mqtt.CommandsConfig)
			c.Password = env.Secrets["password"]
			c.CAFile, c.CertFile, c.KeyFile = env.Path(c.CAFile), env.Path(c.CertFile), env.Path(c.KeyFile)
			c.Logger = env.Logger
		},
		Build: func(cfg any, _ SinkEnv) (CommandSource, error) { return mqtt.NewCommands(*cfg.(*mqtt.CommandsConfig)) },
		Describe: func(cfg any, _ SinkEnv) string {
			c := cfg.(*mqtt.CommandsConfig)
			return fmt.Sprintf("mqtt %s topic %q (replies on the MQTT 5 response topic, or <topic>/reply)", redact.URL(c.URL), orDefault(c.Topic, mqtt.DefaultCommandTopic))
		},
	})
	RegisterCommands("nats", CommandKind{
		Config:  func() any { return new(nats.CommandsConfig) },
		Secrets: []string{"password", "token"},
		Prepare: func(cfg any, env SinkEnv) {
			c := cfg.(*nats.CommandsConfig)
			c.Password, c.Token = env.Secrets["password"], env.Secrets["token"]
			c.CAFile, c.CertFile, c.KeyFile, c.CredsFile = env.Path(c.CAFile), env.Path(c.CertFile), env.Path(c.KeyFile), env.Path(c.CredsFile)
			c.Logger = env.Logger
		},
		Build: func(cfg any, _ SinkEnv) (CommandSource, error) { return nats.NewCommands(*cfg.(*nats.CommandsConfig)) },
		Describe: func(cfg any, _ SinkEnv) string {
			c := cfg.(*nats.CommandsConfig)
			return fmt.Sprintf("nats %s subject %q (request-reply)", redact.URL(c.URL), orDefault(c.Subject, nats.DefaultCommandSubject))
		},
	})
}
