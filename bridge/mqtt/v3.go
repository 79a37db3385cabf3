package mqtt

import (
	"context"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
)

// Status payloads on Config.StatusTopic.
const (
	statusOnline  = "online"
	statusOffline = "offline"
)

// v3 publishes with MQTT 3.1.1 through paho.mqtt.golang, whose publishes
// are asynchronous: each returns a token that completes on the
// acknowledgement.
type v3 struct {
	set *settings
	cli pmqtt.Client

	mu      sync.Mutex
	up      bool          // connected once; from then on paho reconnects by itself
	pending pmqtt.Token   // connect attempt in progress, if any
	gen     atomic.Uint64 // connections made
}

func newV3(set *settings) *v3 {
	c := &v3{set: set}
	o := v3Options(set)
	then := o.OnConnect
	o.SetOnConnectHandler(func(cl pmqtt.Client) {
		c.gen.Add(1)
		if then != nil {
			then(cl)
		}
	})
	c.cli = pmqtt.NewClient(o)
	return c
}

func (c *v3) generation() uint64 { return c.gen.Load() }

// v3Options are the client options of set, shared by the sink and the
// command source.
func v3Options(set *settings) *pmqtt.ClientOptions {
	o := pmqtt.NewClientOptions()
	o.AddBroker(set.url.String())
	o.SetClientID(set.ClientID)
	o.SetUsername(set.Username)
	o.SetPassword(set.Password)
	if set.tls != nil {
		o.SetTLSConfig(set.tls)
	}
	if !isWebSocket(set.url) {
		o.SetCustomOpenConnectionFn(func(u *url.URL, _ pmqtt.ClientOptions) (net.Conn, error) {
			return dial(context.Background(), u, set.tls, set.ConnectTimeout)
		})
	}
	o.SetProtocolVersion(4) // 3.1.1; no silent fallback to 3.1
	o.SetCleanSession(!set.PersistentSession)
	o.SetStore(newCopyStore())
	o.SetKeepAlive(set.KeepAlive)
	o.SetConnectTimeout(set.ConnectTimeout)
	o.SetWriteTimeout(set.AckTimeout)
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(set.MaxReconnectInterval)
	o.SetConnectRetry(false) // the first connection's errors go to Connect's caller
	if set.StatusTopic != "" {
		o.SetWill(set.StatusTopic, statusOffline, 1, true)
		topic := set.StatusTopic
		// paho calls this in its own goroutine after every (re)connection;
		// not waiting for the token keeps that goroutine short-lived.
		o.SetOnConnectHandler(func(c pmqtt.Client) {
			c.Publish(topic, 1, true, statusOnline)
		})
	}
	return o
}

func (c *v3) connect(ctx context.Context) error {
	c.mu.Lock()
	if c.up {
		c.mu.Unlock()
		return nil
	}
	tok := c.pending
	if tok == nil {
		tok = c.cli.Connect()
		c.pending = tok
	}
	c.mu.Unlock()

	select {
	case <-tok.Done():
	case <-ctx.Done():
		// The attempt goes on (bounded by ConnectTimeout); the next call
		// waits for it.
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == tok {
		c.pending = nil
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.up = true
	return nil
}

// publishBatch sends the items in order, keeping at most MaxInFlight tokens
// outstanding in a ring; when it is full it waits for the oldest.
func (c *v3) publishBatch(ctx context.Context, items []item, fail func(int, error)) {
	type pend struct {
		idx      int
		tok      pmqtt.Token
		deadline time.Time
	}
	ring := make([]pend, min(c.set.MaxInFlight, len(items)))
	head, n := 0, 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	ctxDone := false

	// wait completes the oldest outstanding publish.
	wait := func() {
		p := ring[head]
		ring[head] = pend{}
		head = (head + 1) % len(ring)
		n--
		if ctxDone {
			// Do not wait any longer; take what has completed.
			select {
			case <-p.tok.Done():
				if err := p.tok.Error(); err != nil {
					fail(p.idx, err)
				}
			default:
				fail(p.idx, ctx.Err())
			}
			return
		}
		timer.Reset(time.Until(p.deadline))
		select {
		case <-p.tok.Done():
			if err := p.tok.Error(); err != nil {
				fail(p.idx, err)
			}
		case <-timer.C:
			fail(p.idx, ErrAckTimeout)
		case <-ctx.Done():
			ctxDone = true
			fail(p.idx, ctx.Err())
		}
		timer.Stop()
	}

	qos := byte(c.set.QoS)
	for _, it := range items {
		if ctxDone || ctx.Err() != nil {
			ctxDone = true
			fail(it.idx, ctx.Err())
			continue
		}
		if n == len(ring) {
			wait()
			if ctxDone {
				fail(it.idx, ctx.Err())
				continue
			}
		}
		// paho queues QoS 1/2 publishes made while it reconnects and
		// completes QoS 0 ones without sending them; fail both at once
		// instead, so the caller knows and no unbounded queue builds up.
		if !c.cli.IsConnectionOpen() {
			fail(it.idx, ErrNotConnected)
			continue
		}
		tok := c.cli.Publish(it.topic, qos, c.set.Retain || it.retain, it.payload)
		ring[(head+n)%len(ring)] = pend{idx: it.idx, tok: tok, deadline: time.Now().Add(c.set.AckTimeout)}
		n++
	}
	for n > 0 {
		wait()
	}
}

func (c *v3) close(ctx context.Context) error {
	// A clean DISCONNECT keeps the broker from sending the will, so say
	// "offline" ourselves first.
	if c.set.StatusTopic != "" && c.cli.IsConnectionOpen() {
		tok := c.cli.Publish(c.set.StatusTopic, 1, true, statusOffline)
		t := time.NewTimer(c.set.AckTimeout)
		select {
		case <-tok.Done():
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	quiesce := time.Second
	if dl, ok := ctx.Deadline(); ok {
		quiesce = min(quiesce, time.Until(dl))
	}
	if ctx.Err() != nil || quiesce < 0 {
		quiesce = 0
	}
	c.cli.Disconnect(uint(quiesce / time.Millisecond))
	return nil
}
