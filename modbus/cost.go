package modbus

import (
	"math"
	"time"
)

// CostModel estimates how long a read request takes on the wire, so that the
// [Planner] can weigh one more request against reading more registers:
//
//	cost(request) = PerRequest + Quantity*PerRegister   (holding, input)
//	cost(request) = PerRequest + Quantity*PerBit        (coil, discrete)
//
// and a plan costs the sum over its requests. Build one for the transport
// with [TCPCost], [RTUCost] or [ASCIICost]; the package documentation gives
// the formulas.
// A zero CostModel makes every plan cost 0; the planner then still prefers
// fewer requests, then fewer registers.
type CostModel struct {
	// PerRequest is the fixed cost of one request and its response: round
	// trip, frame headers and checksums, inter-frame silences.
	PerRequest time.Duration
	// PerRegister is the cost of each register read (two bytes of response).
	PerRegister time.Duration
	// PerBit is the cost of each coil or discrete input read (one eighth of a
	// byte of response).
	PerBit time.Duration
}

// Cost returns the estimated time of one read of quantity units of table t.
func (c CostModel) Cost(t Table, quantity uint16) time.Duration {
	if t.IsBits() {
		return c.PerRequest + time.Duration(quantity)*c.PerBit
	}
	return c.PerRequest + time.Duration(quantity)*c.PerRegister
}

// Frame sizes of the read functions (FC 01-04), Modbus Application Protocol
// V1.1b3 6.1-6.4, Modbus Messaging on TCP/IP Implementation Guide 3.1.3
// (MBAP header) and Modbus over Serial Line V1.02 2.5.1 (RTU frame).
const (
	pduRequest   = 5 // function code, starting address (2), quantity (2)
	pduResponse  = 2 // function code, byte count; then the data
	mbapHeader   = 7 // transaction id (2), protocol id (2), length (2), unit id
	rtuOverhead  = 3 // address, then CRC (2)
	asciiBytes   = 2 // address, LRC: each two characters
	asciiDelims  = 3 // ':', CR, LF
	rtuSilence   = 3.5
	rtuFastT35   = 1750 * time.Microsecond // t3.5 fixed above 19200 baud (Serial Line 2.5.1.1)
	rtuFastLimit = 19200
)

// TCPCost returns the cost model of Modbus TCP with the given round-trip time
// and bandwidth in bytes per second: a request costs one round trip plus its
// request and response frames (MBAP header, 7 bytes, plus the PDU: 12 bytes
// out, 9 bytes back before the data) at that bandwidth, and each register two
// more bytes (a bit, an eighth of a byte). A bytesPerSecond of 0 or less means
// the bandwidth is unknown and only round trips count.
func TCPCost(rtt time.Duration, bytesPerSecond float64) CostModel {
	c := CostModel{PerRequest: rtt}
	if bytesPerSecond > 0 && !math.IsInf(bytesPerSecond, 0) {
		perByte := float64(time.Second) / bytesPerSecond
		c.PerRequest += ns(float64(2*mbapHeader+pduRequest+pduResponse) * perByte)
		c.PerRegister = ns(2 * perByte)
		c.PerBit = ns(perByte / 8)
	}
	return c
}

// RTUCost returns the cost model of Modbus RTU on a serial line of the given
// baud rate and character format (1 start bit + dataBits + parityBits (0 or
// 1) + stopBits per character): a request costs its request frame (address,
// function, address, quantity, CRC: 8 characters), the response frame's
// overhead (address, function, byte count, CRC: 5 characters) and two
// inter-frame silences of 3.5 characters (fixed at 1.75 ms above 19200 baud);
// each register costs two characters, each bit an eighth of one. The device's
// own turnaround time is not included: add it to PerRequest when known.
// Invalid arguments fall back to 19200 baud, 8 data bits and 1 stop bit.
func RTUCost(baud int, dataBits, parityBits, stopBits int) CostModel {
	if baud <= 0 {
		baud = 19200
	}
	if dataBits <= 0 {
		dataBits = 8
	}
	if parityBits < 0 {
		parityBits = 0
	}
	if stopBits <= 0 {
		stopBits = 1
	}
	charBits := 1 + dataBits + parityBits + stopBits
	char := float64(time.Second) * float64(charBits) / float64(baud)
	silence := ns(rtuSilence * char)
	if baud > rtuFastLimit {
		silence = rtuFastT35
	}
	frames := float64(rtuOverhead+pduRequest) + float64(rtuOverhead+pduResponse)
	return CostModel{
		PerRequest:  ns(frames*char) + 2*silence,
		PerRegister: ns(2 * char),
		PerBit:      ns(char / 8),
	}
}

// ASCIICost returns the cost model of Modbus ASCII on a serial line of the
// given baud rate and character format (1 start bit + dataBits +
// parityBits (0 or 1) + stopBits per character; 10 bits for the 7E1 the
// specification makes the default). Every byte of a frame is sent as two
// hex characters, plus ':' and CR LF around it (Modbus over Serial Line
// V1.02, 2.5.2.1): a read request frame is 1 + 2×(1 + 5 + 1) + 2 = 17
// characters, the response's overhead 1 + 2×(1 + 2 + 1) + 2 = 11; each
// register costs four characters, each bit a quarter of one. ASCII frames
// are delimited by characters, so there is no inter-frame silence. The
// device's own turnaround time is not included: add it to PerRequest when
// known. Invalid arguments fall back to 19200 baud, 7 data bits, even parity
// and 1 stop bit.
func ASCIICost(baud int, dataBits, parityBits, stopBits int) CostModel {
	if baud <= 0 {
		baud = 19200
	}
	if dataBits <= 0 {
		dataBits = 7
	}
	if parityBits < 0 {
		parityBits = 1
	}
	if stopBits <= 0 {
		stopBits = 1
	}
	char := float64(time.Second) * float64(1+dataBits+parityBits+stopBits) / float64(baud)
	request := asciiDelims + 2*(asciiBytes+pduRequest)
	response := asciiDelims + 2*(asciiBytes+pduResponse)
	return CostModel{
		PerRequest:  ns(float64(request+response) * char),
		PerRegister: ns(4 * char),
		PerBit:      ns(char / 4),
	}
}

// EndpointCost returns the cost model of ep's transport: [RTUCost] or
// [ASCIICost] with its serial settings for the serial-line framings, else
// [TCPCost] with a round trip of 1 ms at 10 Mbit/s.
func EndpointCost(ep Endpoint) CostModel {
	parity := 1
	if ep.Parity == ParityNone {
		parity = 0
	}
	switch {
	case ep.RTUFramed():
		return RTUCost(ep.Speed, ep.DataBits, parity, ep.StopBits)
	case ep.ASCIIFramed():
		return ASCIICost(ep.Speed, ep.DataBits, parity, ep.StopBits)
	}
	return TCPCost(time.Millisecond, 1.25e6)
}

// ns rounds a number of nanoseconds to a Duration.
func ns(f float64) time.Duration { return time.Duration(math.Round(f)) }

// wireTime returns how long req and the longest reply it can have take on
// ep's serial line: the characters of both frames (RTU: address, PDU, CRC;
// ASCII: ':', two hex characters per byte of address, PDU and LRC, CR LF)
// at [Endpoint.CharTime], plus for RTU the two inter-frame silences of 3.5
// characters ([Endpoint.FrameSilence]) — for a read, the cost [RTUCost] or
// [ASCIICost] gives it. A serial request's deadline is its timeout plus
// this: at 4800 baud 7E1 a 125-register ASCII reply alone takes 1.06 s.
// It is 0 for an endpoint that is not a local serial line (rtu, ascii):
// the line behind a gateway is not known, its timeout must cover it.
func wireTime(ep Endpoint, req *request) time.Duration {
	if (ep.Scheme != SchemeRTU && ep.Scheme != SchemeASCII) || ep.Speed <= 0 {
		return 0
	}
	reqPDU := pduRequest
	if req.fc == fcWriteMultipleCoils || req.fc == fcWriteMultipleRegs {
		reqPDU += 1 + len(req.data)
	}
	var repPDU int
	switch req.fc {
	case fcReadCoils, fcReadDiscrete:
		repPDU = pduResponse + (int(req.qty)+7)/8
	case fcReadHolding, fcReadInput:
		repPDU = pduResponse + 2*int(req.qty)
	case fcWriteSingleCoil, fcWriteSingleReg, fcWriteMultipleCoils, fcWriteMultipleRegs:
		repPDU = pduRequest // function, address, quantity or value echoed
	default:
		repPDU = 253 // the largest PDU (Application Protocol 4.1)
	}
	var chars int
	if ep.ASCIIFramed() {
		chars = 2*asciiDelims + 2*(asciiBytes+reqPDU) + 2*(asciiBytes+repPDU)
	} else {
		chars = 2*rtuOverhead + reqPDU + repPDU
	}
	return time.Duration(chars)*ep.CharTime() + 2*ep.FrameSilence()
}
