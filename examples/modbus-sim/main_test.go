package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
)

func TestSimServesProfile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-profile", "eastron-sdm630", "-set", "frequency=49.5"}, io.Discard, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go io.Copy(io.Discard, pr)
	i := strings.Index(line, "tcp://")
	require.GreaterOrEqual(t, i, 0, line)
	url := strings.TrimSpace(line[i:])

	p, err := modbus.BuiltinProfile("eastron-sdm630")
	require.NoError(t, err)
	freq, ok := p.Point("frequency")
	require.True(t, ok)
	c, err := modbus.NewClient(modbus.ClientConfig{URL: url})
	require.NoError(t, err)
	defer c.Close()
	regs, err := c.ReadRegisters(ctx, 1, freq.Table, freq.Address, freq.Registers())
	require.NoError(t, err)
	v, err := freq.Decode(regs)
	require.NoError(t, err)
	assert.Equal(t, 49.5, v.Float())
	cancel()
	require.NoError(t, <-done)
}

func TestSimErrors(t *testing.T) {
	ctx := context.Background()
	var out strings.Builder
	require.NoError(t, run(ctx, []string{"-list"}, &out, io.Discard))
	assert.Contains(t, out.String(), "eastron-sdm630")
	err := run(ctx, []string{"-profile", "no-such-profile"}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no-such-profile")
	err = run(ctx, []string{"-addr", "127.0.0.1:0", "-set", "nope=1"}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope")
}
