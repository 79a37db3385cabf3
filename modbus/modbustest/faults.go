package modbustest

import (
	"sync/atomic"
	"time"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// Except answers every request with the exception code.
func Except(code modbus.ExceptionCode) Hook {
	return func(Request) Fault { return Fault{Exception: code} }
}

// ExceptAt answers requests of table that cover addr with the exception
// code; others are answered normally.
func ExceptAt(table modbus.Table, addr uint16, code modbus.ExceptionCode) Hook {
	return func(r Request) Fault {
		if r.Table == table && addr >= r.Address && int(addr) < int(r.Address)+int(r.Quantity) {
			return Fault{Exception: code}
		}
		return Fault{}
	}
}

// Delay holds every answer back by d.
func Delay(d time.Duration) Hook {
	return func(Request) Fault { return Fault{Delay: d} }
}

// NoReply swallows every request.
func NoReply() Hook {
	return func(Request) Fault { return Fault{NoReply: true} }
}

// DropConnection closes the connection on every request.
func DropConnection() Hook {
	return func(Request) Fault { return Fault{Drop: true} }
}

// ResetConnection resets the connection (TCP RST) on every request.
func ResetConnection() Hook {
	return func(Request) Fault { return Fault{Reset: true} }
}

// First applies h to the first n requests only, then answers normally.
func First(n int, h Hook) Hook {
	var seen atomic.Int64
	return func(r Request) Fault {
		if seen.Add(1) <= int64(n) {
			return h(r)
		}
		return Fault{}
	}
}

// ForUnit applies h to requests for unit id only.
func ForUnit(unit uint8, h Hook) Hook {
	return func(r Request) Fault {
		if r.Unit == unit {
			return h(r)
		}
		return Fault{}
	}
}

// Chain asks each hook in turn and returns the first fault that is not the
// zero Fault.
func Chain(hooks ...Hook) Hook {
	return func(r Request) Fault {
		for _, h := range hooks {
			if f := h(r); f != (Fault{}) {
				return f
			}
		}
		return Fault{}
	}
}
