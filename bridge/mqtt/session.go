package mqtt

import (
	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	pmqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
)

// The two functions below let a package that runs an MQTT session of its
// own (bridge/sparkplug, whose Will and births change with every CONNECT)
// connect exactly as the sink does — the same URL rules, TLS files,
// credentials, keep-alive, timeouts and buffered dialer — without a copy of
// that code. The session's own rules (Will, clean session, reconnection)
// are the caller's to set on the result.

// ClientOptionsV3 returns the paho.mqtt.golang options the sink would use
// for c, with the TLS files loaded: broker, client id (a random one when
// c has none), credentials, the sink's dialer, clean session unless
// PersistentSession, keep-alive, timeouts, automatic reconnection. A
// status topic, when set, adds its Will and birth. The errors are those of
// [New].
func (c Config) ClientOptionsV3() (*pmqtt.ClientOptions, error) {
	set, err := c.build()
	if err != nil {
		return nil, cfgcheck.Wrap("mqtt", err)
	}
	return v3Options(set), nil
}

// ClientConfigV5 returns the autopaho configuration the sink would use for
// c, with the TLS files loaded: server URL, TLS, client id, credentials,
// the sink's dialer, Clean Start unless PersistentSession, keep-alive,
// timeouts and the reconnection back-off (at most MaxReconnectInterval).
// OnConnectionUp and OnConnectError do nothing; set them. The errors are
// those of [New].
func (c Config) ClientConfigV5() (autopaho.ClientConfig, error) {
	set, err := c.build()
	if err != nil {
		return autopaho.ClientConfig{}, cfgcheck.Wrap("mqtt", err)
	}
	return v5Config(set, func(*autopaho.ConnectionManager, *paho.Connack) {}, func(error) {}), nil
}
