package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/pymodbus"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestSunSpecGatewayPymodbus is the "done when" with a peer nobody
// here wrote: pymodbus serves a datastore filled with the registers of the
// pysunspec2 DER fixture at 40000, and the gateway reads it with sunspec:
// {base: auto}, every value compared with the fixture (raw × 10^sf), nothing
// not implemented as a number. Runs with M2MB_INTEROP=1 (skipped without
// pymodbus otherwise).
func TestSunSpecGatewayPymodbus(t *testing.T) {
	pymodbus.Need(t)
	registerSSRec()
	data, err := os.ReadFile(filepath.Join("..", "modbus", "sunspec", "testdata", "device_1547.json"))
	require.NoError(t, err)
	dev, err := modbustest.SunSpecFixture(data, 40000)
	require.NoError(t, err)
	own, err := modbustest.NewSunSpecServer(dev) // the fixture's registers, and what they mean
	require.NoError(t, err)
	defer own.Close()
	c, err := modbus.NewClient(modbus.ClientConfig{URL: own.URL()})
	require.NoError(t, err)
	defer c.Close()
	models := own.Models()
	last := models[len(models)-1]
	end := int(last.Address) + 2 + int(last.Length) + 2 // with the end model
	var py strings.Builder
	py.WriteString("hr = [0] * 40000 + [")
	for a := 40000; a < end; a += 125 {
		regs, err := c.ReadRegisters(context.Background(), 1, modbus.Holding, uint16(a), uint16(min(125, end-a)))
		require.NoError(t, err)
		for _, r := range regs {
			fmt.Fprintf(&py, "%d,", r)
		}
	}
	py.WriteString("]\n")
	peer := pymodbus.StartTCP(t, py.String())

	cfg, err := Parse("gw.yaml", []byte(fmt.Sprintf(`
devices:
  - name: pyder
    interval: 50ms
    modbus: {url: %s}
    sunspec: {base: auto}
sinks:
  - sunspecrec: {}
`, peer.URL)))
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	stop := runGateway(g)
	defer func() { require.NoError(t, stop()) }()
	require.Eventually(t, func() bool { _, ok := ssLatest("pyder/common.SN"); return ok }, 20*time.Second, 10*time.Millisecond)
	n := requireSunSpec(t, own, "pyder")
	require.Greater(t, n, 200)
}
