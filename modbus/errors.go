package modbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// ExceptionCode is a Modbus exception code (Modbus Application Protocol
// V1.1b3, 7 "MODBUS Exception Responses").
type ExceptionCode uint8

// The exception codes of the Application Protocol, section 7.
const (
	IllegalFunction                    ExceptionCode = 0x01
	IllegalDataAddress                 ExceptionCode = 0x02
	IllegalDataValue                   ExceptionCode = 0x03
	ServerDeviceFailure                ExceptionCode = 0x04
	Acknowledge                        ExceptionCode = 0x05
	ServerDeviceBusy                   ExceptionCode = 0x06
	MemoryParityError                  ExceptionCode = 0x08
	GatewayPathUnavailable             ExceptionCode = 0x0A
	GatewayTargetDeviceFailedToRespond ExceptionCode = 0x0B
)

var exceptionNames = map[ExceptionCode]string{
	IllegalFunction:                    "illegal function",
	IllegalDataAddress:                 "illegal data address",
	IllegalDataValue:                   "illegal data value",
	ServerDeviceFailure:                "server device failure",
	Acknowledge:                        "acknowledge",
	ServerDeviceBusy:                   "server device busy",
	MemoryParityError:                  "memory parity error",
	GatewayPathUnavailable:             "gateway path unavailable",
	GatewayTargetDeviceFailedToRespond: "gateway target device failed to respond",
}

// String returns the exception's name as the specification spells it, in
// lower case, or "exception 0xNN" for a code it does not define.
func (c ExceptionCode) String() string {
	if s, ok := exceptionNames[c]; ok {
		return s
	}
	return "exception 0x" + strconv.FormatUint(uint64(c), 16)
}

// Sentinel errors. An [*ExceptionError] matches the sentinel of its code with
// errors.Is, so callers can write errors.Is(err, modbus.ErrIllegalDataAddress)
// without caring whether the error came from a read, a write or a poll.
var (
	ErrIllegalFunction                    = errors.New("modbus: illegal function")
	ErrIllegalDataAddress                 = errors.New("modbus: illegal data address")
	ErrIllegalDataValue                   = errors.New("modbus: illegal data value")
	ErrServerDeviceFailure                = errors.New("modbus: server device failure")
	ErrAcknowledge                        = errors.New("modbus: acknowledge")
	ErrServerDeviceBusy                   = errors.New("modbus: server device busy")
	ErrMemoryParityError                  = errors.New("modbus: memory parity error")
	ErrGatewayPathUnavailable             = errors.New("modbus: gateway path unavailable")
	ErrGatewayTargetDeviceFailedToRespond = errors.New("modbus: gateway target device failed to respond")

	// ErrTimeout is matched by a request that got no (complete) answer in
	// time. Such errors also report Timeout() == true, like net.Error.
	ErrTimeout = errors.New("modbus: request timed out")
	// ErrProtocol is matched by a malformed or unexpected response: a bad
	// CRC, a short frame, a wrong unit id or function code in the answer.
	ErrProtocol = errors.New("modbus: protocol error")
	// ErrBackoff is returned without any I/O while a connection (or, on a
	// shared bus, a unit) is waiting out its backoff after failures. The
	// error wraps the failure that caused the backoff.
	ErrBackoff = errors.New("modbus: backing off after failure")
	// ErrUnknownPoint is matched by a write ([Device.Write],
	// [Device.WritePoint]) of a name the device does not have. It wraps
	// bridge.ErrUnknownPoint, a refusal.
	ErrUnknownPoint = fmt.Errorf("modbus: %w", bridge.ErrUnknownPoint)
	// ErrReadOnly is matched by a write of a point that Modbus cannot
	// write: an input register, a discrete input. It wraps
	// bridge.ErrNotWritable, a refusal.
	ErrReadOnly = fmt.Errorf("modbus: read-only table: %w", bridge.ErrNotWritable)
	// ErrNotRepresentable is matched by a write of a value that the
	// point's scale and offset cannot produce from an integral register
	// value (21.55 for an int16 with scale 0.1). It wraps
	// bridge.ErrOutOfRange, a refusal.
	ErrNotRepresentable = fmt.Errorf("modbus: not representable: %w", bridge.ErrOutOfRange)
	// ErrClosed is returned by every call on a closed Client, Device or Bus.
	// It wraps bridge.ErrClosed.
	ErrClosed = fmt.Errorf("modbus: %w", bridge.ErrClosed)
)

var exceptionSentinels = map[ExceptionCode]error{
	IllegalFunction:                    ErrIllegalFunction,
	IllegalDataAddress:                 ErrIllegalDataAddress,
	IllegalDataValue:                   ErrIllegalDataValue,
	ServerDeviceFailure:                ErrServerDeviceFailure,
	Acknowledge:                        ErrAcknowledge,
	ServerDeviceBusy:                   ErrServerDeviceBusy,
	MemoryParityError:                  ErrMemoryParityError,
	GatewayPathUnavailable:             ErrGatewayPathUnavailable,
	GatewayTargetDeviceFailedToRespond: ErrGatewayTargetDeviceFailedToRespond,
}

// ExceptionError is an exception response from a device: the request reached
// it and it refused it with a code.
type ExceptionError struct {
	Unit     uint8         // unit (slave) id that answered
	Function uint8         // function code of the request (without the 0x80 flag)
	Code     ExceptionCode // the exception code
}

// Error returns "modbus: unit 1 function 0x03: exception 2 (illegal data address)".
func (e *ExceptionError) Error() string {
	return "modbus: unit " + strconv.Itoa(int(e.Unit)) + " " + e.detail()
}

func (e *ExceptionError) detail() string {
	return fmt.Sprintf("function 0x%02x: exception %d (%s)", e.Function, e.Code, e.Code)
}

// Is reports whether target is the sentinel of e's code, so that
// errors.Is(err, ErrIllegalDataAddress) holds for exception code 2.
func (e *ExceptionError) Is(target error) bool {
	s, ok := exceptionSentinels[e.Code]
	return ok && s == target
}

// OpError describes a failed operation on a device, like net.OpError: what
// was attempted, where, and the error that caused it (an [*ExceptionError],
// a timeout, a transport error), which it wraps.
type OpError struct {
	Op       string // "connect", "read", "write"
	Device   string // the device's URL (and the unit on a shared line)
	Unit     uint8
	Table    Table // empty for "connect"
	Address  uint16
	Quantity uint16
	Err      error

	noUnit bool // the operation concerns the link, not one unit (Client.Connect)
}

// Error returns a message naming the operation, the device, the table and
// address range, and the cause.
func (e *OpError) Error() string {
	s := "modbus: " + e.Op + " " + e.Device
	if !e.noUnit {
		s += " unit " + strconv.Itoa(int(e.Unit))
	}
	if e.Table != "" {
		s += " " + string(e.Table) + " " + strconv.Itoa(int(e.Address))
		if e.Quantity > 1 {
			s += "+" + strconv.Itoa(int(e.Quantity))
		}
	}
	ex, _ := e.Err.(*ExceptionError) // not errors.As: a wrapper (a backoff) says more
	switch {
	case ex != nil && ex.Unit == e.Unit:
		s += ": " + ex.detail() // the unit is said already
	case e.Err != nil:
		s += ": " + trimPrefix(e.Err.Error())
	}
	return s
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// Timeout reports whether the operation timed out.
func (e *OpError) Timeout() bool { return errors.Is(e.Err, ErrTimeout) }

func trimPrefix(s string) string {
	const p = "modbus: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// timeoutError is ErrTimeout with the cause the transport reported.
type timeoutError struct{ cause error }

func (e timeoutError) Error() string   { return ErrTimeout.Error() }
func (e timeoutError) Is(t error) bool { return t == ErrTimeout || t == os.ErrDeadlineExceeded }
func (e timeoutError) Unwrap() error   { return e.cause }
func (e timeoutError) Timeout() bool   { return true }

// protocolError is ErrProtocol with what was wrong.
type protocolError struct{ detail string }

func (e protocolError) Error() string   { return "modbus: protocol error: " + e.detail }
func (e protocolError) Is(t error) bool { return t == ErrProtocol }

// ExceptionCodeOf returns the exception code carried by err, if err is or
// wraps an [*ExceptionError].
func ExceptionCodeOf(err error) (ExceptionCode, bool) {
	var e *ExceptionError
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}

// IsRetriable reports whether an operation that failed with err may succeed
// if tried again: timeouts, transport and protocol errors, and the exceptions
// that say "not now" (Acknowledge, Server Device Busy, Server Device Failure,
// the two gateway codes). It is false for nil, for exceptions that will not
// change by retrying (illegal function, address or value), for a closed
// client and for a cancelled context.
func IsRetriable(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) {
		return false
	}
	if c, ok := ExceptionCodeOf(err); ok {
		switch c {
		case IllegalFunction, IllegalDataAddress, IllegalDataValue:
			return false
		}
		return true
	}
	var cfg *ConfigError
	var fe *bridge.FieldError
	if errors.As(err, &cfg) || errors.As(err, &fe) {
		return false
	}
	if bridge.IsRefusal(err) { // a write refused by a point's rules
		return false
	}
	return true
}

// ConfigError is a configuration problem found before any I/O: a bad URL,
// an option out of range. Field names the offending setting.
type ConfigError struct {
	Field string // the setting: "url", "timeout", "unit", "speed" ...
	Err   error  // what is wrong with it
}

// Error returns "modbus: field: what is wrong".
func (e *ConfigError) Error() string { return "modbus: " + e.Field + ": " + trimPrefix(e.Err.Error()) }

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

func configErrorf(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// classifyError classifies an error of one of this package's transports:
// exceptions ([*ExceptionError]) leave the connection as it is; a timeout
// (matching ErrTimeout), a protocol error (matching ErrProtocol) and
// anything else (the socket or serial port failing: EOF, a broken pipe, a
// reset) make it suspect, to be re-made. transport reports that.
func classifyError(err error) (mapped error, transport bool) {
	if err == nil {
		return nil, false
	}
	var ex *ExceptionError
	switch {
	case errors.As(err, &ex):
		return err, false
	case errors.Is(err, ErrTimeout):
		return err, true
	}
	if isTimeout(err) {
		return timeoutError{err}, true
	}
	return err, true
}
