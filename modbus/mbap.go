package modbus

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// mbapConn is this package's own MBAP transport (Modbus Messaging on TCP/IP
// Implementation Guide V1.0b, 3.1.3), used for tcp, tcp+tls (Modbus/TCP
// Security) and udp links instead of the upstream client's.
//
// Why not upstream's: its TCP transport (simonvetter/modbus v1.6.4,
// tcp_transport.go) keeps its socket to itself and has no context, so a
// request on the wire could not be interrupted: shutdown and a cancelled
// write had to abandon it on a goroutine of its own, still holding the
// link, for up to its Timeout, and every request whose context could end
// paid for that goroutine. Owning the transport gives every link the same
// contract as the serial-line one (lineConn):
//
//   - a request in progress can be aborted (the connection is closed), so
//     a call returns as soon as its context ends and requests run on the
//     caller's goroutine;
//   - every reply is matched to its request by transaction id, and then
//     checked against it (unit, function, byte count, a write's echo); a
//     frame with another transaction id or protocol id (a late reply to an
//     earlier request, say) is discarded, counted ([Stats.Discarded]) and
//     never decoded;
//   - a reply is read with one system call when it has arrived whole (the
//     upstream transport reads header and body separately).
type mbapConn struct {
	conn      net.Conn
	r         *bufio.Reader // stream transports (tcp, tcp+tls)
	datagram  bool          // udp: one frame per datagram
	timeout   time.Duration
	txn       uint16
	aborted   atomic.Bool
	discarded func()
	out       [mbapMaxFrame]byte
	in        [mbapMaxFrame]byte // udp: the datagram
	body      [mbapMaxFrame]byte // tcp: unit id and PDU of the frame read
}

// mbapMaxFrame is the longest MBAP frame: the header (mbapHeader) and a
// PDU of at most 253 bytes.
const mbapMaxFrame = 260

// dialMBAP connects to ep (tcp, tcp+tls or udp). The dial honours ctx and
// takes at most 5 s (15 s with the TLS handshake), as upstream's did.
func dialMBAP(ctx context.Context, ep Endpoint, cfg ClientConfig, cert *tls.Certificate, cas *x509.CertPool) (*mbapConn, error) {
	var conn net.Conn
	var err error
	switch ep.Scheme {
	case SchemeTCP:
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err = d.DialContext(ctx, "tcp", ep.Address)
	case SchemeUDP:
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err = d.DialContext(ctx, "udp", ep.Address)
	case SchemeTLS:
		tc := &tls.Config{RootCAs: cas, MinVersion: tls.VersionTLS12} // MBAPS R-01: TLS 1.2 or later
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 15 * time.Second}, Config: tc}
		conn, err = d.DialContext(ctx, "tcp", ep.Address) // the handshake is part of the dial
	default:
		return nil, fmt.Errorf("modbus: %s is not an MBAP transport", ep.Scheme)
	}
	if err != nil {
		return nil, err
	}
	m := &mbapConn{conn: conn, timeout: cfg.Timeout, datagram: ep.Scheme == SchemeUDP}
	if !m.datagram {
		m.r = bufio.NewReaderSize(conn, 2*mbapMaxFrame)
	}
	return m, nil
}

// exchange sends req and returns the data of its reply (see
// [request.check]), valid until the next call.
func (m *mbapConn) exchange(req *request) ([]byte, error) {
	if err := m.conn.SetDeadline(time.Now().Add(m.timeout)); err != nil {
		return nil, m.failed(err)
	}
	m.txn++
	b := binary.BigEndian.AppendUint16(m.out[:0], m.txn)
	b = append(b, 0, 0, 0, 0, req.unit) // protocol 0; length set below
	b = req.appendPDU(b)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-6))
	if _, err := m.conn.Write(b); err != nil {
		return nil, m.failed(err)
	}
	for {
		txn, proto, unit, pdu, err := m.readFrame()
		if err != nil {
			return nil, m.failed(err)
		}
		if proto != 0 || txn != m.txn {
			m.discarded() // another protocol's, or a late reply to an earlier request
			continue
		}
		// A gateway answers for a unit it cannot reach from its own unit
		// id 255 (as upstream accepts): an exception only, never data.
		if unit == 0xFF && unit != req.unit && len(pdu) > 0 && pdu[0] == req.fc|0x80 {
			unit = req.unit
		}
		data, err := req.check(unit, pdu)
		var mm mismatch
		if errors.As(err, &mm) {
			// Our transaction id on a reply to something else: the server
			// is confused, and nothing more on this connection can be
			// trusted.
			m.discarded()
			return nil, protocolError{mm.Error()}
		}
		return data, err
	}
}

// readFrame reads one MBAP frame. The PDU is valid until the next call.
func (m *mbapConn) readFrame() (txn, proto uint16, unit uint8, pdu []byte, err error) {
	var hdr, body []byte
	if m.datagram {
		n, err := m.conn.Read(m.in[:])
		if err != nil {
			return 0, 0, 0, nil, err
		}
		if n < mbapHeader+1 {
			return 0, 0, 0, nil, protocolError{fmt.Sprintf("a %d-byte datagram is no MBAP frame", n)}
		}
		hdr, body = m.in[:mbapHeader], m.in[mbapHeader-1:n]
	} else {
		h, err := m.r.Peek(mbapHeader)
		if err != nil {
			return 0, 0, 0, nil, err
		}
		hdr = h
	}
	txn = binary.BigEndian.Uint16(hdr)
	proto = binary.BigEndian.Uint16(hdr[2:])
	length := int(binary.BigEndian.Uint16(hdr[4:])) // unit id and PDU
	if length < 2 || mbapHeader-1+length > mbapMaxFrame {
		// The stream's framing is lost: nothing after this can be read.
		return 0, 0, 0, nil, protocolError{fmt.Sprintf("MBAP length %d (want 2 to %d)", length, mbapMaxFrame-mbapHeader+1)}
	}
	if m.datagram {
		if len(body) != length {
			return 0, 0, 0, nil, protocolError{fmt.Sprintf("MBAP length %d in a datagram of %d", length, len(body))}
		}
		return txn, proto, body[0], body[1:], nil
	}
	if _, err := m.r.Discard(mbapHeader - 1); err != nil {
		return 0, 0, 0, nil, err
	}
	body = m.body[:length]
	if _, err := io.ReadFull(m.r, body); err != nil {
		return 0, 0, 0, nil, err
	}
	return txn, proto, body[0], body[1:], nil
}

// failed maps a transport error of a request: an aborted request's error
// is errAborted, whatever the socket said.
func (m *mbapConn) failed(err error) error {
	if m.aborted.Load() {
		return errAborted
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return io.EOF // the connection ended within a frame
	}
	var pe protocolError
	if isTimeout(err) && !errors.As(err, &pe) {
		return timeoutError{err}
	}
	return err
}

func (m *mbapConn) abort() {
	m.aborted.Store(true)
	_ = m.conn.Close()
}

func (m *mbapConn) close() error { return m.conn.Close() }
