package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadme keeps README.md honest: every complete configuration in it
// passes -check, and the per-transport examples are the testdata files
// (which TestCheckExamples checks) verbatim.
func TestReadme(t *testing.T) {
	data, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(data)
	examples, err := filepath.Glob("testdata/examples/*.yaml")
	require.NoError(t, err)
	fromFiles := map[string]bool{}
	for _, f := range examples {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.Contains(t, readme, "```yaml\n"+string(b)+"```", "README shows %s verbatim", f)
		fromFiles[string(b)] = true
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(readme, -1)
	require.NotEmpty(t, blocks)
	n := 0
	// The reference excerpts, in order (a Modbus device, an OPC UA device,
	// the sinks, spool/health/shutdown), make one configuration together.
	excerpts := "devices:\n"
	for _, b := range blocks {
		if text, ok := strings.CutPrefix(b[1], "# excerpt\n"); ok {
			excerpts += text
		}
	}
	dir := t.TempDir()
	writeConfig(t, dir, excerpts)
	code, _, stderr := runGateway(t, dir, []string{"PLC1_PASSWORD=x"}, "-check")
	assert.Equal(t, 0, code, "README excerpts together:\n%s\n%s", excerpts, stderr)
	for i, b := range blocks {
		text := b[1]
		if strings.HasPrefix(text, "# excerpt") || fromFiles[text] {
			continue
		}
		n++
		dir := t.TempDir()
		writeConfig(t, dir, text)
		code, _, stderr := runGateway(t, dir, []string{"MQTT_PASSWORD=x"}, "-check")
		assert.Equal(t, 0, code, "README yaml block %d:\n%s\n%s", i, text, stderr)
	}
	assert.GreaterOrEqual(t, n, 3, "the walk-through's configurations were checked")
}
