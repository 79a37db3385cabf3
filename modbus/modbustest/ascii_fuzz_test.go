package modbustest

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// FuzzASCIIReader: whatever the input, the request reader never panics,
// and every frame it accepts is a well-formed frame of the input (its LRC
// checks, and it re-encodes to text found in the input).
func FuzzASCIIReader(f *testing.F) {
	f.Add([]byte(":0103000A0001F1\r\n"))
	f.Add([]byte("xx:0103:0103000A0001F1\r\n:01\r\n"))
	f.Add([]byte(":" + string(bytes.Repeat([]byte("AB"), 300)) + "\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newASCIIReader(bytes.NewReader(in), 0)
		buf := make([]byte, 520)
		upper := bytes.ToUpper(in)
		for range 1000 {
			unit, pdu, err := r.read(buf)
			if errors.Is(err, errBadFrame) {
				continue
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			adu := append([]byte{unit}, pdu...)
			enc := modbus.AppendASCIIFrame(nil, adu)
			if !bytes.Contains(upper, enc[1:len(enc)-2]) {
				t.Fatalf("accepted %X, not in the input %q", adu, in)
			}
		}
	})
}
