package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGeneratedUpToDate fails when models_gen.go is not what the generator
// makes of the model JSON files: run go generate ./modbus/sunspec.
func TestGeneratedUpToDate(t *testing.T) {
	want, err := Generate("../../models")
	require.NoError(t, err)
	got, err := os.ReadFile("../../models_gen.go")
	require.NoError(t, err)
	require.True(t, string(want) == string(got), "modbus/sunspec/models_gen.go is stale: run go generate ./modbus/sunspec")
}

func TestGenerateRejectsBadModels(t *testing.T) {
	for name, body := range map[string]string{
		"unknown type": `{"id": 9, "group": {"name": "m", "type": "group", "points": [{"name": "X", "type": "int128", "size": 1}]}}`,
		"bad access":   `{"id": 9, "group": {"name": "m", "type": "group", "points": [{"name": "X", "type": "int16", "size": 1, "access": "W"}]}}`,
		"bad id":       `{"id": 65535, "group": {"name": "m", "type": "group", "points": []}}`,
		"bad json":     `{"id": 9, "group": `,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(dir+"/model_9.json", []byte(body), 0o644))
			_, err := Generate(dir)
			require.Error(t, err)
			require.Contains(t, err.Error(), "model_9.json")
		})
	}
}
