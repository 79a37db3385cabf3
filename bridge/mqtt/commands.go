package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	pmqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/command"
	"github.com/m2mbridge/m2mbridge/internal/limits"
)

// DefaultCommandTopic is the command topic template used when
// CommandsConfig.Topic is empty.
const DefaultCommandTopic = "m2m/cmd/{source}/{point}"

// ErrRunning is returned by a second call of [Commands.Run].
var ErrRunning = errors.New("mqtt: commands already running")

// CommandsConfig holds the settings of a [Commands] source: the connection
// settings of the sink's [Config] (url, version, client_id, username and
// password, TLS, keep_alive, connect_timeout, max_reconnect_interval,
// persistent_session, status_topic), with Topic the command topic template
// (default [DefaultCommandTopic]), and what commands add. The yaml keys are
// those of the gateway's `commands: - mqtt:` block; qos, retain and
// max_in_flight, which only the sink uses, are refused.
type CommandsConfig struct {
	Config `yaml:",inline"`
	// WriteTimeout bounds each write, from the command's arrival to the
	// read-back (default 5s, 100ms to 10m).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// Logger receives what cannot be answered (a subscription the broker
	// refused, an answer that could not be published). Default
	// slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// Validate checks every setting without I/O and returns every problem at
// once, each a *bridge.FieldError whose Path is the setting's YAML key, as
// [Config.Validate] does. The topic must hold {source} and {point}, each a
// whole topic level, so that one subscription with '+' for each receives
// every command.
func (c CommandsConfig) Validate() error {
	_, _, err := c.check(false)
	return err
}

// check validates c, and with build also loads its TLS files; it returns
// the settings and the topic pattern.
func (c CommandsConfig) check(build bool) (*settings, *command.Pattern, error) {
	cc := c.Config
	var errs []error
	if cc.Topic == "" {
		cc.Topic = DefaultCommandTopic
	}
	for _, k := range []struct {
		key string
		set bool
	}{{"qos", cc.QoS != 0}, {"retain", cc.Retain}, {"max_in_flight", cc.MaxInFlight != 0}} {
		if k.set {
			errs = append(errs, &bridge.FieldError{Path: k.key, Msg: "not used by a command source",
				Hint: "commands are received and answered at QoS 1, never retained; remove " + k.key})
		}
	}
	var pat *command.Pattern
	if t, err := parseTemplate(cc.Topic); err == nil {
		pat, err = command.NewPattern(t.Template, '/', "+")
		if err != nil {
			errs = append(errs, bridge.FieldErrorf("topic", "%q: %v", cc.Topic, err))
		}
	}
	wt := c.WriteTimeout
	errs = append(errs, limits.Durations(limits.Duration{Key: "write_timeout", P: &wt, Def: bridge.DefaultWriteTimeout, Min: limits.MinTimeout, Max: limits.MaxTimeout})...)
	var s *settings
	var err error
	if build {
		s, err = cc.build()
	} else {
		s, err = cc.check()
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = append(errs, j.Unwrap()...)
	} else if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return s, pat, nil
}

// Commands receives write commands from MQTT and answers them: see the
// package doc, "Commands". Its methods may be called from any goroutine.
type Commands struct {
	set     *settings
	pattern *command.Pattern
	timeout time.Duration
	log     *slog.Logger
	seen    *command.Seen

	life command.Lifecycle // Run once, Close
}

// NewCommands validates cfg and returns a command source. It does not
// dial: [Commands.Run] does. Every problem with cfg is reported at once, as
// [New] reports them.
func NewCommands(cfg CommandsConfig) (*Commands, error) {
	set, pat, err := cfg.check(true)
	if err != nil {
		return nil, cfgcheck.Wrap("mqtt", err)
	}
	timeout := cfg.WriteTimeout
	if timeout == 0 {
		timeout = bridge.DefaultWriteTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Commands{set: set, pattern: pat, timeout: timeout, log: log,
		seen: command.NewSeen(command.Window, command.MaxSeen), life: command.Lifecycle{Pkg: "mqtt"}}, nil
}

// Filter returns the topic filter the source subscribes to
// ("m2m/cmd/+/+" for the default template).
func (c *Commands) Filter() string { return c.pattern.Filter() }

// Run connects to the broker, subscribes to the command topics and hands
// each command to write, until ctx ends or Close is called; it then
// disconnects, ends every goroutine it started and returns nil. The first
// connection is retried like any later one (a broker that is down, or
// refuses the client, delays commands, it does not end Run); it returns an
// error earlier only when the client cannot be started. Run is called
// once: a second call returns [ErrRunning], a call after Close an error
// wrapping [bridge.ErrClosed].
func (c *Commands) Run(ctx context.Context, write bridge.WriteFunc) error {
	if write == nil {
		return errors.New("mqtt: commands: nil WriteFunc")
	}
	ctx, end, err := c.life.Begin(ctx, ErrRunning)
	if err != nil {
		return err
	}
	defer end()
	ctx, cancel := context.WithCancel(ctx) // cancelled before the pool is waited for
	defer cancel()

	pool := command.Start(ctx, write, c.timeout, c.seen)
	if c.set.Version == V5 {
		err = c.runV5(ctx, pool)
	} else {
		err = c.runV3(ctx, pool)
	}
	cancel()
	pool.Wait()
	return err
}

// Close stops Run, if it is running, and waits for it to return, within
// ctx. Every later Run returns an error wrapping [bridge.ErrClosed].
func (c *Commands) Close(ctx context.Context) error { return c.life.Close(ctx) }

// origin is what the write logs as who asked.
func origin(topic string) string { return "mqtt " + topic }

// replyTopic is where the answer to a command received on topic goes when
// the command names no response topic.
func replyTopic(topic string) string { return topic + "/reply" }

func (c *Commands) runV3(ctx context.Context, pool *command.Pool) error {
	set := c.set
	o := v3Options(set)
	stop := make(chan struct{})
	var handlers sync.WaitGroup // the OnConnect handlers, which wait for SUBACK

	handle := func(cl pmqtt.Client, m pmqtt.Message) {
		topic := m.Topic()
		src, pt, ok := c.pattern.Match(topic)
		if !ok {
			return // not a command topic: the filter lets none through
		}
		payload := append([]byte(nil), m.Payload()...) // handled after this returns
		pool.Submit(ctx, command.Msg{Source: src, Point: pt, Origin: origin(topic), Payload: payload,
			Reply: func(ctx context.Context, answer []byte) {
				rt := replyTopic(topic)
				tok := cl.Publish(rt, 1, false, answer)
				t := time.NewTimer(set.AckTimeout)
				defer t.Stop()
				select {
				case <-tok.Done():
					if err := tok.Error(); err != nil {
						c.log.Warn("mqtt: commands: answer not published", "topic", rt, "err", err)
					}
				case <-t.C:
					c.log.Warn("mqtt: commands: answer not acknowledged in time", "topic", rt)
				case <-ctx.Done():
				}
			}})
	}
	o.SetDefaultPublishHandler(handle) // a resumed session's messages come before SUBSCRIBE
	birth := o.OnConnect
	filter := c.pattern.Filter()
	o.SetOnConnectHandler(func(cl pmqtt.Client) {
		// paho runs this in a goroutine of its own after every
		// (re)connection; a clean session has no subscriptions, so make
		// them again.
		handlers.Add(1)
		defer handlers.Done()
		if birth != nil {
			birth(cl)
		}
		tok := cl.Subscribe(filter, 1, handle)
		select {
		case <-tok.Done():
		case <-stop:
			return
		}
		err := tok.Error()
		if st, ok := tok.(*pmqtt.SubscribeToken); ok && err == nil && st.Result()[filter] == 0x80 {
			err = errors.New("the broker refused it (SUBACK 0x80)")
		}
		if err != nil {
			c.log.Warn("mqtt: commands: subscribe", "filter", filter, "err", err)
		}
	})
	cli := pmqtt.NewClient(o)
	// paho reconnects by itself once connected; until then Run retries,
	// in a wait its context ends (paho's own retry sleeps through it).
	backoff := backoff(set.MaxReconnectInterval)
	t := time.NewTimer(0)
	defer t.Stop()
	for attempt := 0; ; attempt++ {
		select {
		case <-ctx.Done():
		case <-t.C:
			tok := cli.Connect()
			<-tok.Done() // within ConnectTimeout
			if err := tok.Error(); err != nil {
				c.log.Warn("mqtt: commands: connect", "url", redactURL(set.url), "err", err)
				t.Reset(backoff(attempt + 1))
				continue
			}
		}
		break
	}

	<-ctx.Done()
	close(stop)
	pool.Wait()
	cli.Disconnect(uint(closeTimeout / 4 / time.Millisecond))
	handlers.Wait()
	return nil
}

func (c *Commands) runV5(ctx context.Context, pool *command.Pool) error {
	set := c.set
	filter := c.pattern.Filter()
	cfg := v5Config(set, func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
		// autopaho calls this in its connection goroutine on every
		// connection; a clean start has no subscriptions.
		sctx, cancel := context.WithTimeout(ctx, set.AckTimeout)
		defer cancel()
		sa, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
		if err == nil && sa != nil && len(sa.Reasons) > 0 && sa.Reasons[0] >= 0x80 {
			err = fmt.Errorf("the broker refused it (reason code 0x%02x)", sa.Reasons[0])
		}
		if err != nil && ctx.Err() == nil {
			c.log.Warn("mqtt: commands: subscribe", "filter", filter, "err", err)
		}
	}, func(err error) {
		c.log.Warn("mqtt: commands: connect", "url", redactURL(set.url), "err", err)
	})
	var cm *autopaho.ConnectionManager
	var cmReady = make(chan struct{})
	cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
		p := pr.Packet
		if p == nil {
			return false, nil
		}
		src, pt, ok := c.pattern.Match(p.Topic)
		if !ok {
			return false, nil
		}
		rt, corr := replyTopic(p.Topic), []byte(nil)
		if p.Properties != nil {
			if p.Properties.ResponseTopic != "" {
				rt = p.Properties.ResponseTopic // MQTT 5 section 4.10
			}
			corr = append([]byte(nil), p.Properties.CorrelationData...)
		}
		payload := append([]byte(nil), p.Payload...) // handled after this returns
		pool.Submit(ctx, command.Msg{Source: src, Point: pt, Origin: origin(p.Topic), Payload: payload,
			Reply: func(ctx context.Context, answer []byte) {
				<-cmReady
				if cm == nil {
					return
				}
				pctx, cancel := context.WithTimeout(ctx, set.AckTimeout)
				defer cancel()
				reply := &paho.Publish{Topic: rt, QoS: 1, Payload: answer}
				if len(corr) > 0 {
					reply.Properties = &paho.PublishProperties{CorrelationData: corr}
				}
				if _, err := cm.Publish(pctx, reply); err != nil && ctx.Err() == nil {
					c.log.Warn("mqtt: commands: answer not published", "topic", rt, "err", err)
				}
			}})
		return true, nil
	}}
	mctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	cm, err = autopaho.NewConnection(mctx, cfg)
	close(cmReady)
	if err != nil {
		return fmt.Errorf("mqtt: commands: %w", err)
	}

	<-ctx.Done()
	pool.Wait()
	dctx, dcancel := context.WithTimeout(context.Background(), closeTimeout)
	_ = cm.Disconnect(dctx)
	dcancel()
	cancel()
	<-cm.Done()
	return nil
}
