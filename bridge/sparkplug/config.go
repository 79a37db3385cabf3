package sparkplug

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
	"github.com/m2mbridge/m2mbridge/internal/redact"
)

// Config holds the settings of a Sparkplug B edge node. The yaml keys are
// those of the gateway's `sparkplug:` sink block. The connection keys — url to max_reconnect_interval — mean
// what they mean for the MQTT sink ([mqtt.Config]) and are checked by it;
// the MQTT session itself is fixed by the spec (clean session, the NDEATH
// Will), so the MQTT sink's topic, qos, retain, persistent_session and
// status_topic have no counterpart here.
type Config struct {
	// URL is the broker, as [mqtt.Config.URL].
	URL string `yaml:"url"`
	// Version is the MQTT version, 3 (3.1.1, the default) or 5.
	Version mqtt.Version `yaml:"version"`
	// ClientID, Username, Password, CAFile, CertFile, KeyFile and
	// ServerName are as in [mqtt.Config]. Password is not read from YAML
	// and never printed (see [Config.String]).
	ClientID   string `yaml:"client_id"`
	Username   string `yaml:"username"`
	Password   string `yaml:"-"`
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
	// AckTimeout, KeepAlive, ConnectTimeout and MaxReconnectInterval are
	// as in [mqtt.Config], with its defaults. MaxInFlight is refused
	// unless 0: the edge node publishes one message at a time, data at
	// QoS 0 (spec 4.2), so nothing is in flight to bound.
	MaxInFlight          int           `yaml:"max_in_flight"`
	AckTimeout           time.Duration `yaml:"ack_timeout"`
	KeepAlive            time.Duration `yaml:"keep_alive"`
	ConnectTimeout       time.Duration `yaml:"connect_timeout"`
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval"`

	// GroupID is the group_id element of every topic (spec 4.1.2).
	// Required.
	GroupID string `yaml:"group_id"`
	// EdgeNodeID is the edge_node_id element of every topic (spec 4.1.4),
	// unique within the group. Required.
	EdgeNodeID string `yaml:"edge_node_id"`
	// StateDir is the directory where the edge node keeps what must
	// survive a restart: the bdSeq of its last MQTT CONNECT (spec 4.2.1.1.2).
	// It is created on first use. One edge node per directory. Required.
	StateDir string `yaml:"state_dir"`
	// PrimaryHostID, when set, is the host_id of the primary host
	// application: the edge node subscribes to its STATE topic and is born
	// only while that host is online; when it goes offline the edge node
	// sends NDEATH, disconnects, and keeps its data in the bridge's queue
	// (or spool) until the host is back (spec 5.4, 4.2.3).
	PrimaryHostID string `yaml:"primary_host_id"`
	// Aliases, true unless set false, gives every metric an alias in its
	// birth, and DDATA names metrics by alias only (spec 6.4.6).
	Aliases *bool `yaml:"aliases"`
	// Commands lets DCMD write: a DCMD to a metric becomes a write through
	// the bridge (bridge.Bridge.Write), which refuses what the source does
	// not allow. False (the default) refuses and logs every DCMD.
	Commands bool `yaml:"commands"`
	// SendUnchanged publishes every sample the bridge forwards, also one
	// whose value and quality equal what the host already has for its
	// metric (from the last birth or DDATA of this session). False (the
	// default) sends changes only, as spec 1.5 and 5.8 describe DDATA: a
	// Sparkplug host keeps a metric's value until a DDATA, DDEATH or
	// NDEATH says otherwise, so a repeat tells it nothing.
	SendUnchanged bool `yaml:"send_unchanged"`

	// Logger receives the edge node's events (connections, births,
	// deaths, refused commands). Default slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// aliases reports whether metrics get aliases.
func (c Config) aliases() bool { return c.Aliases == nil || *c.Aliases }

// String describes the configuration with the password redacted, so that a
// Config may be logged.
func (c Config) String() string {
	pw := ""
	if c.Password != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("sparkplug.Config{URL:%q Version:%d ClientID:%q Username:%q Password:%q GroupID:%q EdgeNodeID:%q StateDir:%q PrimaryHostID:%q Aliases:%t Commands:%t SendUnchanged:%t}",
		redact.URL(c.URL), c.Version, c.ClientID, c.Username, pw, c.GroupID, c.EdgeNodeID, c.StateDir, c.PrimaryHostID, c.aliases(), c.Commands, c.SendUnchanged)
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// mqttConfig returns the connection keys as an [mqtt.Config], the one owner
// of their rules.
func (c Config) mqttConfig() mqtt.Config {
	return mqtt.Config{
		URL: c.URL, Version: c.Version, ClientID: c.ClientID,
		Username: c.Username, Password: c.Password,
		CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, ServerName: c.ServerName,
		AckTimeout: c.AckTimeout, KeepAlive: c.KeepAlive,
		ConnectTimeout: c.ConnectTimeout, MaxReconnectInterval: c.MaxReconnectInterval,
	}
}

// Validate checks every setting and returns every problem at once, each a
// *bridge.FieldError whose path is the setting's yaml key ("group_id",
// "url"). It does no I/O: the state directory is created and used on
// connect.
func (c Config) Validate() error {
	var errs []error
	if err := c.mqttConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxInFlight != 0 {
		errs = append(errs, &bridge.FieldError{Path: "max_in_flight", Msg: "not used by a Sparkplug edge node",
			Hint: "it publishes one message at a time, data at QoS 0; remove max_in_flight"})
	}
	for _, id := range []struct{ key, v, eg string }{
		{"group_id", c.GroupID, "plant1"},
		{"edge_node_id", c.EdgeNodeID, "gw1"},
	} {
		if id.v == "" {
			errs = append(errs, bridge.FieldErrorf(id.key, "missing (e.g. %s)", id.eg))
			continue
		}
		if err := CheckID(id.v); err != nil {
			errs = append(errs, &bridge.FieldError{Path: id.key, Msg: err.Error(),
				Hint: "Sparkplug IDs are topic elements (spec 4.1)"})
		}
	}
	if c.PrimaryHostID != "" {
		if err := CheckID(c.PrimaryHostID); err != nil {
			errs = append(errs, &bridge.FieldError{Path: "primary_host_id", Msg: err.Error(),
				Hint: "the host_id is a topic element of spBv1.0/STATE/{host_id} (spec 4.2.3.1.1)"})
		}
	}
	if c.StateDir == "" {
		errs = append(errs, &bridge.FieldError{Path: "state_dir", Msg: "missing (e.g. ./state)",
			Hint: "the bdSeq of the last connection is kept there, so that a restart does not reuse it"})
	}
	return errors.Join(errs...)
}
