package modbus

import (
	"errors"
	"fmt"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Bus is one link shared by several devices: a serial line (rtu, ascii) or
// an RTU-over-TCP/UDP or ASCII-over-TCP gateway in front of one. Devices on
// a Bus take turns: one request at a time, in the order they asked, with
// the 3.5-character silence of an RTU line between frames, and a unit that
// stops answering (it times out twice in a row, or the gateway answers
// Gateway Target Device Failed To Respond) is backed off (exponentially,
// capped at ClientConfig.MaxBackoff) so that its timeouts cannot starve the
// units that answer. While a unit is backed off its points are reported Bad
// with a reason wrapping [ErrBackoff].
//
// A Bus is a [Client] made for sharing; it is safe for concurrent use.
type Bus struct {
	c *Client
}

// NewBus checks cfg and returns a Bus; it does no I/O.
func NewBus(cfg ClientConfig) (*Bus, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Bus{c: c}, nil
}

// Client returns the Bus's client, for direct reads and writes that take
// their turn with the devices' polls.
func (b *Bus) Client() *Client { return b.c }

// Stats returns the link's figures: requests, errors, how busy the line was
// (Busy, Utilisation) and, per unit, request counts, latency and backoff.
func (b *Bus) Stats() Stats { return b.c.Stats() }

// Close closes the link. The devices on it must have stopped.
func (b *Bus) Close() error { return b.c.Close() }

// NewDevices makes the devices of cfgs, like [NewDevice], and puts devices
// that name the same serial-line link (an rtu or ascii serial device, or an
// rtuovertcp, rtuoverudp or asciiovertcp gateway address) without a Bus of
// their own on one shared
// [Bus], made from the first such device's connection settings. It returns
// every problem of every device at once, as *[bridge.FieldError] values
// whose paths start with the device's index in cfgs ("[2].unit",
// "[0].points[3].address"). The buses it made are returned too,
// for their Stats and to be closed after the devices stop.
func NewDevices(cfgs ...DeviceConfig) ([]*Device, []*Bus, error) {
	var errs []error
	buses := map[string]*Bus{}
	var busList []*Bus
	count := map[string]int{}
	type port struct {
		scheme string
		i      int
	}
	ports := map[string]port{} // a local serial device: its first device's framing
	for i, cfg := range cfgs {
		ep, err := ParseURL(cfg.Conn.URL)
		if err != nil {
			continue
		}
		if ep.Scheme == SchemeRTU || ep.Scheme == SchemeASCII {
			// One serial device has one framing: rtu and ascii on one
			// port would be two links fighting over it.
			if p, seen := ports[ep.Address]; !seen {
				ports[ep.Address] = port{ep.Scheme, i}
			} else if p.scheme != ep.Scheme {
				errs = append(errs, bridge.FieldErrorf(fmt.Sprintf("[%d].modbus.url", i), "%s framing differs from %s of device [%d] on the same serial device %s: one line has one framing", ep.Scheme, p.scheme, p.i, ep.Address))
			}
		}
		if cfg.Bus == nil && ep.SerialFramed() {
			count[ep.Scheme+"://"+ep.Address]++
		}
	}
	devs := make([]*Device, 0, len(cfgs))
	for i, cfg := range cfgs {
		if cfg.Bus == nil {
			if ep, err := ParseURL(cfg.Conn.URL); err == nil && ep.SerialFramed() && count[ep.Scheme+"://"+ep.Address] > 1 {
				key := ep.Scheme + "://" + ep.Address
				b := buses[key]
				if b == nil {
					nb, err := NewBus(cfg.Conn)
					if err != nil {
						errs = append(errs, bridge.PrefixFields(fmt.Sprintf("[%d].modbus", i), err))
						continue
					}
					b = nb
					buses[key] = b
					busList = append(busList, b)
				}
				cfg.Bus = b
			}
		}
		d, err := NewDevice(cfg)
		if err != nil {
			errs = append(errs, bridge.PrefixFields(fmt.Sprintf("[%d]", i), err))
			continue
		}
		devs = append(devs, d)
	}
	names := map[string]int{}
	for i, cfg := range cfgs {
		if j, dup := names[cfg.Name]; dup && cfg.Name != "" {
			errs = append(errs, bridge.FieldErrorf(fmt.Sprintf("[%d].name", i), "duplicate: device [%d] is named %q too", j, cfg.Name))
			continue
		}
		names[cfg.Name] = i
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return devs, busList, nil
}
