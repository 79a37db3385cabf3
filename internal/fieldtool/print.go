package fieldtool

import (
	"fmt"
	"io"
	"strings"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Printer writes readings to W: as the bridge's JSON lines
// ([bridge.AppendJSON], the encoding of the gateway's stdout and file
// sinks) when JSON is set, else as an aligned table for people — the
// point, its value and unit, the registers it was decoded from in hex,
// and, when Times is set, the time of the answer. A Printer is not safe for
// concurrent use.
type Printer struct {
	W     io.Writer
	JSON  bool
	Times bool // table: a time column (for repeated reads)

	buf    []byte
	header bool
}

// Print writes rs and returns the first write error.
func (p *Printer) Print(rs []Reading) error {
	p.buf = p.buf[:0]
	if p.JSON {
		for i := range rs {
			p.buf = bridge.AppendJSON(p.buf, &rs[i].Sample)
			p.buf = append(p.buf, '\n')
		}
		_, err := p.W.Write(p.buf)
		return err
	}
	var b strings.Builder
	if !p.header {
		p.header = true
		if p.Times {
			fmt.Fprintf(&b, "%-12s ", "TIME")
		}
		fmt.Fprintf(&b, "%-16s %-24s %s\n", "POINT", "VALUE", "RAW")
	}
	for _, r := range rs {
		if p.Times {
			fmt.Fprintf(&b, "%-12s ", r.Time.Format("15:04:05.000"))
		}
		val := r.Value.String()
		if r.Unit != "" {
			val += " " + r.Unit
		}
		if r.Quality != bridge.Good {
			val = r.Quality.String() + ": " + r.Reason
		}
		fmt.Fprintf(&b, "%-16s %-24s %s\n", r.Point, val, hexWords(r.Raw))
	}
	_, err := io.WriteString(p.W, b.String())
	return err
}

func hexWords(regs []uint16) string {
	var b strings.Builder
	for i, w := range regs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "0x%04X", w)
	}
	return b.String()
}
