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

// startSim runs the command with args and returns the URL it serves at;
// stop ends it and checks it returned no error.
func startSim(t *testing.T, args ...string) (ctx context.Context, url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), io.Discard, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go io.Copy(io.Discard, pr)
	i := strings.Index(line, "tcp://")
	require.GreaterOrEqual(t, i, 0, line)
	return ctx, strings.TrimSpace(line[i:]), func() {
		cancel()
		require.NoError(t, <-done)
	}
}

func TestSimServesProfile(t *testing.T) {
	ctx, url, stop := startSim(t, "-profile", "eastron-sdm630", "-set", "frequency=49.5")

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
	stop()
}

// TestSimGaps: the SDM630 answers a read across the gaps of its map, as its
// profile says, unless -gaps refuse.
func TestSimGaps(t *testing.T) {
	for _, tt := range []struct {
		gaps string
		ok   bool
	}{{"profile", true}, {"refuse", false}, {"zeros", true}} {
		t.Run(tt.gaps, func(t *testing.T) {
			ctx, url, stop := startSim(t, "-profile", "eastron-sdm630", "-gaps", tt.gaps)
			defer stop()
			c, err := modbus.NewClient(modbus.ClientConfig{URL: url})
			require.NoError(t, err)
			defer c.Close()
			regs, err := c.ReadRegisters(ctx, 1, modbus.Input, 0, 80) // registers 44-45 and others are unlisted
			if tt.ok {
				require.NoError(t, err)
				assert.Len(t, regs, 80)
				assert.Equal(t, []uint16{0, 0}, regs[44:46])
			} else {
				assert.ErrorIs(t, err, modbus.ErrIllegalDataAddress)
			}
		})
	}
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-gaps", "sometimes"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, `-gaps "sometimes"`)
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
