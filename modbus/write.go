package modbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// WritePoint writes value to the named point: a bridge.Value or a Go bool,
// integer, float or string, encoded with the point's type, word and byte
// order and inverse scale, and range-checked ([Point.Encode]). Holding
// registers are written with FC 06 (one register) or FC 16, coils with FC
// 05; a bool in one bit of a holding register by read-modify-write of the
// register (see [Device] on what that guards against). Input registers and
// discrete inputs are refused with [ErrReadOnly], unknown names with
// [ErrUnknownPoint]. Answers Server Device Busy are retried like reads.
//
// WritePoint is safe to call while Run polls; the write takes its turn on
// the link. The context bounds the wait for the link; see [Client] for what
// happens once the request is on the wire.
func (d *Device) WritePoint(ctx context.Context, name string, value any) error {
	if d.closed.Load() {
		return ErrClosed
	}
	i, ok := d.byName[name]
	if !ok {
		return fmt.Errorf("%w: device %q has no point %q", ErrUnknownPoint, d.name, name)
	}
	p := d.points[i]
	if !p.Table.Writable() {
		return fmt.Errorf("%w: device %q point %q is in the %s table", ErrReadOnly, d.name, name, p.Table)
	}
	v, err := toValue(value)
	if err != nil {
		return fmt.Errorf("modbus: write device %q point %q: %w", d.name, name, err)
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	switch {
	case p.Table == Coil:
		on, err := p.EncodeBit(v)
		if err != nil {
			return fmt.Errorf("modbus: write device %q: %w", d.name, err)
		}
		return d.retryBusy(ctx, func() error { return d.client.WriteCoils(ctx, d.unit, p.Address, []bool{on}) })
	case p.IsBitPoint():
		on, err := p.EncodeBit(v)
		if err != nil {
			return fmt.Errorf("modbus: write device %q: %w", d.name, err)
		}
		var regs []uint16
		if err := d.retryBusy(ctx, func() (err error) {
			regs, err = d.client.ReadRegisters(ctx, d.unit, Holding, p.Address, 1)
			return err
		}); err != nil {
			return fmt.Errorf("modbus: write device %q point %q: reading the register to set bit %d: %w", d.name, name, *p.Bit, err)
		}
		reg := p.SetBit(regs[0], on)
		return d.retryBusy(ctx, func() error { return d.client.WriteRegisters(ctx, d.unit, p.Address, []uint16{reg}) })
	default:
		regs, err := p.Encode(v)
		if err != nil {
			return fmt.Errorf("modbus: write device %q: %w", d.name, err)
		}
		return d.retryBusy(ctx, func() error { return d.client.WriteRegisters(ctx, d.unit, p.Address, regs) })
	}
}

func (d *Device) retryBusy(ctx context.Context, fn func() error) error {
	wait := d.busyWait
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt >= d.busyMax || !(errors.Is(err, ErrServerDeviceBusy) || errors.Is(err, ErrAcknowledge)) {
			return err
		}
		if sleepUntil(ctx, time.Now().Add(wait)) != nil {
			return err
		}
		wait *= 2
	}
}

// toValue converts a Go value to a bridge.Value (see bridge.ValueOf).
func toValue(v any) (bridge.Value, error) {
	if val, ok := bridge.ValueOf(v); ok {
		return val, nil
	}
	return bridge.Value{}, fmt.Errorf("unsupported value type %T", v)
}
