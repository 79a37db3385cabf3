package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// runSunSpec serves a SunSpec inverter (modbustest.SunSpecInverter: models
// 1, 103, 160 with two modules, 123) at base. -set name=value sets raw
// values by SunSpec point name ("inverter_three_phase.W"). Every second the
// inverter's power and its scale factor change together (8500 W as 8500
// with W_SF 0, 850 with W_SF 1), as a real inverter's may: a master that
// reads them in separate requests sees 850 W or 85000 W.
func runSunSpec(ctx context.Context, base int, opts []modbustest.Option, fixed []string, stderr io.Writer) error {
	if base < 0 || base > 65000 {
		return fmt.Errorf("-sunspec-base %d: want 0 to 65000", base)
	}
	srv, err := modbustest.NewSunSpecServer(modbustest.SunSpecInverter(uint16(base), 2), opts...)
	if err != nil {
		return err
	}
	defer srv.Close()
	for _, kv := range fixed {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("-set %q: want name=value", kv)
		}
		if err := srv.SetRaw(map[string]any{k: parseValue(v)}); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "modbus-sim: serving a SunSpec inverter (base %d, models", base)
	for _, m := range srv.Models() {
		fmt.Fprintf(stderr, " %d", m.ID)
	}
	fmt.Fprintf(stderr, ") on %s\n", srv.URL())
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if n%2 == 0 {
				_ = srv.SetRaw(map[string]any{"inverter_three_phase.W": 850, "inverter_three_phase.W_SF": 1})
			} else {
				_ = srv.SetRaw(map[string]any{"inverter_three_phase.W": 8500, "inverter_three_phase.W_SF": 0})
			}
		}
	}
}
