package sparkplug

import (
	"slices"
	"strings"
	"testing"

	"github.com/m2mbridge/m2mbridge/bridge"
	"go.yaml.in/yaml/v3"
)

func TestConfigValidate(t *testing.T) {
	good := Config{URL: "tcp://127.0.0.1:1883", GroupID: "plant1", EdgeNodeID: "gw1", StateDir: "./state"}
	tests := []struct {
		name  string
		edit  func(*Config)
		paths []string // the field errors' paths, in order; nil for a valid config
	}{
		{"valid", func(*Config) {}, nil},
		{"valid MQTT 5 over TLS", func(c *Config) { c.URL = "mqtts://broker"; c.Version = 5; c.Username = "u"; c.Password = "p" }, nil},
		{"everything missing", func(c *Config) { *c = Config{} }, []string{"url", "group_id", "edge_node_id", "state_dir"}},
		{"reserved characters", func(c *Config) { c.GroupID = "a/b"; c.EdgeNodeID = "gw#1" }, []string{"group_id", "edge_node_id"}},
		{"bad utf-8", func(c *Config) { c.EdgeNodeID = "gw\xff" }, []string{"edge_node_id"}},
		{"connection keys checked as the mqtt sink does", func(c *Config) {
			c.URL = "http://x"
			c.Version = 4
			c.CAFile = "ca.pem"
			c.MaxInFlight = 70000
		}, []string{"url", "version", "max_in_flight"}},
		{"TLS file on a plain url", func(c *Config) { c.ServerName = "broker" }, []string{"server_name"}},
		{"max_in_flight has no use", func(c *Config) { c.MaxInFlight = 10 }, []string{"max_in_flight"}},
		{"bad primary_host_id", func(c *Config) { c.PrimaryHostID = "a/b" }, []string{"primary_host_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			err := c.Validate()
			var paths []string
			for _, fe := range bridge.FieldErrors(err) {
				paths = append(paths, fe.Path)
			}
			if !slices.Equal(paths, tt.paths) {
				t.Errorf("paths %q, want %q; err:\n%v", paths, tt.paths, err)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	var c Config
	err := yaml.Unmarshal([]byte(`{url: "tcp://127.0.0.1:1883", version: 5, group_id: plant1, edge_node_id: gw1, state_dir: ./state, username: u, keep_alive: 10s}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "tcp://127.0.0.1:1883" || c.Version != 5 || c.GroupID != "plant1" || c.EdgeNodeID != "gw1" || c.StateDir != "./state" || c.Username != "u" || c.KeepAlive.String() != "10s" {
		t.Errorf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestConfigStringHidesPassword(t *testing.T) {
	c := Config{URL: "tcp://user:secret1@h", Username: "u", Password: "secret2"}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, "secret") {
			t.Errorf("%s shows a secret", s)
		}
	}
}
