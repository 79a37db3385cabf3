package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/command"
	"github.com/m2mbridge/m2mbridge/internal/limits"
	"github.com/m2mbridge/m2mbridge/internal/redact"
)

// DefaultCommandSubject is the command subject template used when
// CommandsConfig.Subject is empty.
const DefaultCommandSubject = "m2m.cmd.{source}.{point}"

// ErrRunning is returned by a second call of [Commands.Run].
var ErrRunning = errors.New("nats: commands already running")

// CommandsConfig holds the settings of a [Commands] source: the connection
// settings of the sink's [Config] (url, name, creds_file, token, username
// and password, TLS, connect_timeout, reconnect_wait), with Subject the
// command subject template (default [DefaultCommandSubject]), and what
// commands add. The yaml keys are those of the gateway's
// `commands: - nats:` block; jetstream, stream, create_stream,
// max_ack_pending and ack_timeout, which only the sink uses, are refused.
type CommandsConfig struct {
	Config `yaml:",inline"`
	// WriteTimeout bounds each write, from the request's arrival to the
	// read-back (default 5s, 100ms to 10m). A requester should wait a
	// little longer for its answer.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// Logger receives what cannot be answered (an answer that could not be
	// published, connection errors). Default slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// Validate checks every setting without I/O and returns every problem at
// once, each a *bridge.FieldError whose Path is the setting's YAML key, as
// [Config.Validate] does. The subject must hold {source} and {point}, each
// a whole token, so that one subscription with '*' for each receives every
// command.
func (c CommandsConfig) Validate() error {
	_, _, err := c.check(false)
	return err
}

func (c CommandsConfig) check(build bool) (*settings, *command.Pattern, error) {
	cc := c.Config
	var errs []error
	if cc.Subject == "" {
		cc.Subject = DefaultCommandSubject
	}
	for _, k := range []struct {
		key string
		set bool
	}{{"jetstream", cc.JetStream}, {"stream", cc.Stream != ""}, {"create_stream", cc.CreateStream},
		{"max_ack_pending", cc.MaxAckPending != 0}, {"ack_timeout", cc.AckTimeout != 0}} {
		if k.set {
			errs = append(errs, &bridge.FieldError{Path: k.key, Msg: "not used by a command source",
				Hint: "commands are core NATS request-reply; remove " + k.key})
		}
	}
	var pat *command.Pattern
	if t, err := parseTemplate(cc.Subject); err == nil {
		pat, err = command.NewPattern(t.Template, '.', "*")
		if err != nil {
			errs = append(errs, bridge.FieldErrorf("subject", "%q: %v", cc.Subject,
				strings.NewReplacer("level", "token", "m2m/cmd/{source}/{point}", DefaultCommandSubject).Replace(err.Error())))
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

// Commands answers write requests from NATS: see the package doc,
// "Commands". Its methods may be called from any goroutine.
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
		return nil, cfgcheck.Wrap("nats", err)
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
		seen: command.NewSeen(command.Window, command.MaxSeen), life: command.Lifecycle{Pkg: "nats"}}, nil
}

// Filter returns the subject the source subscribes to ("m2m.cmd.*.*" for
// the default template).
func (c *Commands) Filter() string { return c.pattern.Filter() }

// Run connects to NATS, subscribes to the command subjects and hands each
// request to write, until ctx ends or Close is called; it then closes the
// connection, ends every goroutine it started and returns nil. The first
// connection is retried like any later one (nats.go's
// RetryOnFailedConnect), so a server that is down delays commands, it does
// not end Run; Run returns an error earlier only when the connection cannot
// be made at all (a bad option). Run is called once: a second call returns
// [ErrRunning], a call after Close an error wrapping [bridge.ErrClosed].
func (c *Commands) Run(ctx context.Context, write bridge.WriteFunc) error {
	if write == nil {
		return errors.New("nats: commands: nil WriteFunc")
	}
	ctx, end, err := c.life.Begin(ctx, ErrRunning)
	if err != nil {
		return err
	}
	defer end()
	ctx, cancel := context.WithCancel(ctx) // cancelled before the pool is waited for
	defer cancel()

	set := c.set
	url := strings.Join(set.servers, ",")
	opts := append(natsOptions(set, set.ConnectTimeout),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				c.log.Warn("nats: commands: disconnected", "url", redact.URL(url), "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.log.Warn("nats: commands", "url", redact.URL(url), "err", err)
		}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("nats: commands: connect %s: %w", redact.URL(url), err)
	}
	pool := command.Start(ctx, write, c.timeout, c.seen)
	_, err = nc.Subscribe(c.pattern.Filter(), func(m *nats.Msg) {
		src, pt, ok := c.pattern.Match(m.Subject)
		if !ok {
			return
		}
		reply := m.Reply
		pool.Submit(ctx, command.Msg{Source: src, Point: pt, Origin: "nats " + m.Subject, Payload: m.Data,
			Reply: func(_ context.Context, answer []byte) {
				if reply == "" {
					return // published, not requested: nobody to answer
				}
				if err := nc.Publish(reply, answer); err != nil {
					c.log.Warn("nats: commands: answer not published", "subject", m.Subject, "err", err)
				}
			}})
	})
	if err == nil {
		<-ctx.Done()
	} else {
		err = fmt.Errorf("nats: commands: subscribe %q: %w", c.pattern.Filter(), err)
	}
	cancel()
	pool.Wait()
	// Answers already published go out before the connection closes.
	fctx, fcancel := context.WithTimeout(context.Background(), time.Second)
	_ = nc.FlushWithContext(fctx)
	fcancel()
	nc.Close()
	return err
}

// Close stops Run, if it is running, and waits for it to return, within
// ctx. Every later Run returns an error wrapping [bridge.ErrClosed].
func (c *Commands) Close(ctx context.Context) error { return c.life.Close(ctx) }
