package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sparkplugDevice = `
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:5020}
    points:
      - {name: v, table: input, address: 0, type: float32}
`

// TestSparkplugSinkParse: the sparkplug sink kind decodes its block into
// sparkplug.Config (state_dir and TLS files relative to the file, the
// password from password_env), and -check describes it; the report is a
// golden file.
func TestSparkplugSinkParse(t *testing.T) {
	t.Setenv("SPB_PASSWORD", "secret-pw")
	cfg, err := Parse("conf/gw.yaml", []byte(sparkplugDevice+`
sinks:
  - sparkplug:
      url: tcp://127.0.0.1:1883
      version: 5
      group_id: plant1
      edge_node_id: gw1
      primary_host_id: scada
      state_dir: ./state
      aliases: true
      commands: true
      username: edge
      password_env: SPB_PASSWORD
    overflow: drop_oldest
`))
	require.NoError(t, err)
	got := cfg.Check().String()
	assert.NotContains(t, got, "secret-pw")
	golden := filepath.Join("testdata", "sparkplug-check.golden")
	if os.Getenv("M2MB_UPDATE_GOLDEN") == "1" {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
	require.Len(t, cfg.Check().Sinks, 1)
	assert.Equal(t, "sparkplug", cfg.Check().Sinks[0].Kind)
	assert.Contains(t, cfg.Check().Sinks[0].Desc, filepath.Join("conf", "state"), "state_dir is relative to the file")
}

// TestSparkplugSinkErrors: the block's mistakes are reported at their
// lines, checked by sparkplug.Config.Validate.
func TestSparkplugSinkErrors(t *testing.T) {
	_, err := Parse("gw.yaml", []byte(sparkplugDevice+`
sinks:
  - sparkplug:
      url: tcp://127.0.0.1:1883
      group_id: plant/1
      primary_host_id: "scada#"
      aliases: maybe
      topic: x
`))
	got := configErrors(t, err)
	require.Len(t, got, 6, "%q", got)
	joined := strings.Join(got, "\n")
	for _, want := range []string{
		"gw.yaml:10: sinks[0].sparkplug.edge_node_id: missing (e.g. gw1)",
		"gw.yaml:10: sinks[0].sparkplug.state_dir: missing (e.g. ./state)",
		"gw.yaml:11: sinks[0].sparkplug.group_id:",
		"gw.yaml:12: sinks[0].sparkplug.primary_host_id:",
		`gw.yaml:13: sinks[0].sparkplug.aliases: want true or false, not "maybe"`,
		"gw.yaml:14: sinks[0].sparkplug.topic: unknown key",
	} {
		assert.Contains(t, joined, want)
	}
}
