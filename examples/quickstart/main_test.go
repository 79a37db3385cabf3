package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

func TestQuickstartPrintsNSamples(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, 60, 10*time.Millisecond))
	sc := bufio.NewScanner(&out)
	lines := 0
	points := map[string]bool{}
	for sc.Scan() {
		s, err := bridge.DecodeJSON(sc.Bytes())
		require.NoError(t, err, sc.Text())
		assert.Equal(t, "meter1", s.Source)
		assert.Equal(t, bridge.Good, s.Quality, "%s: %s", s.Point, s.Reason)
		points[s.Point] = true
		lines++
	}
	assert.Equal(t, 60, lines)
	assert.True(t, points["voltage_l1"])
}

func TestQuickstartFlagErrors(t *testing.T) {
	err := run(context.Background(), io.Discard, -1, time.Second)
	assert.ErrorContains(t, err, "-n -1")
	err = run(context.Background(), io.Discard, 1, 0)
	assert.ErrorContains(t, err, "-interval 0s")
}
