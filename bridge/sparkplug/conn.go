package sparkplug

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	pmqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
)

// conn is one MQTT connection of the edge node: one CONNECT, with its
// Will, and no reconnection of its own. A Sparkplug session is one
// connection: the next one needs a new bdSeq, so the Sink redials (spec
// 5.4, 5.5). Methods may be called from any goroutine.
type conn interface {
	// publish sends one message and returns once it is written (QoS 0)
	// or acknowledged (QoS 1), or failed.
	publish(ctx context.Context, topic string, qos byte, payload []byte) error
	// subscribe subscribes to each filter at QoS 1 and waits for the
	// broker's answer.
	subscribe(ctx context.Context, filters ...string) error
	// lost is closed when the connection ends, for whatever reason.
	lost() <-chan struct{}
	// close disconnects cleanly (the broker discards the Will) and ends
	// the client's goroutines.
	close(ctx context.Context)
}

// message is what the broker delivered on one of the subscriptions.
type message struct {
	topic   string
	payload []byte
}

// dialer makes connections: one function per MQTT version, so that tests
// can count or fail dials.
type dialer func(ctx context.Context, will *paho.WillMessage, onMsg func(message)) (conn, error)

// newDialer returns the dialer for cfg, connecting as the MQTT sink does
// (the helpers of package mqtt), with the session rules of spec 5.4 and
// 6.4: clean session (MQTT 5: Clean Start with session expiry 0), the
// Will as given, no reconnection inside the client.
func newDialer(cfg mqtt.Config) (dialer, error) {
	if cfg.Version == mqtt.V5 {
		base, err := cfg.ClientConfigV5()
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, will *paho.WillMessage, onMsg func(message)) (conn, error) {
			return dialV5(ctx, base, will, onMsg)
		}, nil
	}
	if _, err := cfg.ClientOptionsV3(); err != nil {
		return nil, err
	}
	return func(ctx context.Context, will *paho.WillMessage, onMsg func(message)) (conn, error) {
		o, err := cfg.ClientOptionsV3() // fresh options: paho keeps a pointer to them
		if err != nil {
			return nil, err
		}
		return dialV3(ctx, o, will, onMsg)
	}, nil
}

// v5conn is a connection through autopaho, made to connect once: it does
// not retry a failed first attempt nor reconnect after a loss.
type v5conn struct {
	cm     *autopaho.ConnectionManager
	cancel context.CancelFunc
	ack    time.Duration
	down   chan struct{} // closed when the connection is lost
}

func dialV5(ctx context.Context, cfg autopaho.ClientConfig, will *paho.WillMessage, onMsg func(message)) (conn, error) {
	up := make(chan struct{})
	errc := make(chan error, 1)
	var upOnce sync.Once
	cfg.CleanStartOnInitialConnection = true
	cfg.SessionExpiryInterval = 0
	cfg.WillMessage = will
	cfg.WillProperties = nil
	cfg.OnConnectionUp = func(*autopaho.ConnectionManager, *paho.Connack) { upOnce.Do(func() { close(up) }) }
	cfg.OnConnectError = func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	down := make(chan struct{})
	var downOnce sync.Once
	cfg.OnConnectionDown = func() bool {
		// One connection: the Sink redials. autopaho's Done stays open
		// until Disconnect (its publish queue waits for that), so the
		// loss is told here.
		downOnce.Do(func() { close(down) })
		return false
	}
	cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
		onMsg(message{topic: pr.Packet.Topic, payload: append([]byte(nil), pr.Packet.Payload...)})
		return true, nil
	}}
	mctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(mctx, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	select {
	case <-up:
		return &v5conn{cm: cm, cancel: cancel, ack: cfg.PacketTimeout, down: down}, nil
	case err = <-errc:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	<-cm.Done()
	return nil, err
}

func (c *v5conn) publish(ctx context.Context, topic string, qos byte, payload []byte) error {
	pctx, cancel := context.WithTimeout(ctx, c.ack)
	defer cancel()
	pr, err := c.cm.Publish(pctx, &paho.Publish{Topic: topic, QoS: qos, Payload: payload})
	switch {
	case errors.Is(err, autopaho.ConnectionDownError):
		return ErrNotConnected
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("sparkplug: publish to %s: %w", topic, err)
	case pr != nil && pr.ReasonCode >= 0x80:
		return fmt.Errorf("sparkplug: publish to %s: broker refused with reason code 0x%02x", topic, pr.ReasonCode)
	}
	return nil
}

func (c *v5conn) subscribe(ctx context.Context, filters ...string) error {
	sub := &paho.Subscribe{}
	for _, f := range filters {
		sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: 1})
	}
	sctx, cancel := context.WithTimeout(ctx, c.ack)
	defer cancel()
	ack, err := c.cm.Subscribe(sctx, sub)
	if err != nil {
		return fmt.Errorf("sparkplug: subscribe %v: %w", filters, err)
	}
	for i, rc := range ack.Reasons {
		if rc >= 0x80 && i < len(filters) {
			return fmt.Errorf("sparkplug: subscribe %s: broker refused with reason code 0x%02x", filters[i], rc)
		}
	}
	return nil
}

func (c *v5conn) lost() <-chan struct{} { return c.down }

func (c *v5conn) close(ctx context.Context) {
	_ = c.cm.Disconnect(ctx)
	c.cancel()
	<-c.cm.Done()
}

// v3conn is a paho.mqtt.golang client with automatic reconnection off.
type v3conn struct {
	cli      pmqtt.Client
	ack      time.Duration
	done     chan struct{}
	doneOnce sync.Once
}

func dialV3(ctx context.Context, o *pmqtt.ClientOptions, will *paho.WillMessage, onMsg func(message)) (conn, error) {
	c := &v3conn{ack: o.WriteTimeout, done: make(chan struct{})}
	o.SetCleanSession(true)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetBinaryWill(will.Topic, will.Payload, will.QoS, will.Retain)
	o.SetOnConnectHandler(nil)
	o.SetConnectionLostHandler(func(pmqtt.Client, error) { c.markLost() })
	o.SetDefaultPublishHandler(func(_ pmqtt.Client, m pmqtt.Message) {
		onMsg(message{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...)})
	})
	if c.ack <= 0 {
		c.ack = 10 * time.Second
	}
	if open := o.CustomOpenConnectionFn; open != nil {
		// paho.mqtt.golang can miss a connection lost while it is busy
		// (seen under load: its comms goroutines wait on each other and
		// the lost handler never runs); a read or write error on the
		// socket itself says so for certain.
		o.SetCustomOpenConnectionFn(func(u *url.URL, opts pmqtt.ClientOptions) (net.Conn, error) {
			nc, err := open(u, opts)
			if err != nil {
				return nil, err
			}
			return &watchConn{Conn: nc, lost: c.markLost}, nil
		})
	}
	c.cli = pmqtt.NewClient(o)
	tok := c.cli.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		// paho cannot stop an attempt in progress: wait for its end
		// (bounded by ConnectTimeout), then disconnect.
		<-tok.Done()
		c.cli.Disconnect(0)
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *v3conn) markLost() { c.doneOnce.Do(func() { close(c.done) }) }

// watchConn calls lost at the first read or write error.
type watchConn struct {
	net.Conn
	lost func()
}

func (w *watchConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil {
		w.lost()
	}
	return n, err
}

func (w *watchConn) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	if err != nil {
		w.lost()
	}
	return n, err
}

func (c *v3conn) wait(ctx context.Context, tok pmqtt.Token, what string) error {
	t := time.NewTimer(c.ack)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("sparkplug: %s: %w", what, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("sparkplug: %s: no answer in %v", what, c.ack)
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrNotConnected
	}
}

func (c *v3conn) publish(ctx context.Context, topic string, qos byte, payload []byte) error {
	if !c.cli.IsConnectionOpen() {
		return ErrNotConnected
	}
	return c.wait(ctx, c.cli.Publish(topic, qos, false, payload), "publish to "+topic)
}

func (c *v3conn) subscribe(ctx context.Context, filters ...string) error {
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = 1
	}
	tok := c.cli.SubscribeMultiple(m, nil)
	if err := c.wait(ctx, tok, fmt.Sprintf("subscribe %v", filters)); err != nil {
		return err
	}
	for f, rc := range tok.(*pmqtt.SubscribeToken).Result() {
		if rc >= 0x80 {
			return fmt.Errorf("sparkplug: subscribe %s: broker refused (0x%02x)", f, rc)
		}
	}
	return nil
}

func (c *v3conn) lost() <-chan struct{} { return c.done }

func (c *v3conn) close(ctx context.Context) {
	quiesce := 250 * time.Millisecond
	if dl, ok := ctx.Deadline(); ok {
		quiesce = max(0, min(quiesce, time.Until(dl)))
	}
	c.cli.Disconnect(uint(quiesce / time.Millisecond))
	c.markLost()
}
