package fieldtool

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// ScanPrinter writes a scan's finds to W as they come: a table for people
// or, with JSON, one object per line:
//
//	{"kind":"found","unit":3,"url":"rtu:///dev/ttyUSB0?speed=9600&parity=even&data_bits=8&stop_bits=1",
//	 "speed":9600,"parity":"even","data_bits":8,"stop_bits":1,"register":"holding:0","values":[230],"latency_ms":12.5}
//	{"kind":"found","unit":5,...,"exception":2,"exception_name":"illegal data address",...}
//	{"kind":"garbled","speed":19200,"parity":"none","data_bits":8,"stop_bits":2,"replies":3}
//
// A ScanPrinter is not safe for concurrent use.
type ScanPrinter struct {
	W        io.Writer
	JSON     bool
	Register Register
	header   bool
}

type findJSON struct {
	Kind string `json:"kind"`
	Unit *uint8 `json:"unit,omitempty"`
	URL  string `json:"url,omitempty"`
	Setting
	Register      string   `json:"register,omitempty"`
	Values        []uint16 `json:"values,omitempty"`
	Exception     uint8    `json:"exception,omitempty"`
	ExceptionName string   `json:"exception_name,omitempty"`
	LatencyMS     float64  `json:"latency_ms,omitempty"`
	Replies       uint64   `json:"replies,omitempty"`
}

// Find writes one find.
func (p *ScanPrinter) Find(f Find) error {
	if p.JSON {
		u := f.Unit
		j := findJSON{Kind: "found", Unit: &u, URL: f.URL, Setting: f.Setting, Register: p.Register.String(),
			Values: f.Values, LatencyMS: float64(f.Latency.Microseconds()) / 1000}
		if f.Exception != 0 {
			j.Exception, j.ExceptionName = uint8(f.Exception), f.Exception.String()
		}
		return p.line(j)
	}
	if !p.header {
		p.header = true
		if _, err := fmt.Fprintf(p.W, "%-5s %-10s %-40s %s\n", "UNIT", "SETTINGS", "ANSWER", "LATENCY"); err != nil {
			return err
		}
	}
	set := f.Setting.String()
	if set == "" {
		set = "-"
	}
	_, err := fmt.Fprintf(p.W, "%-5d %-10s %-40s %s\n", f.Unit, set, f.Answer(p.Register), f.Latency.Round(100*time.Microsecond))
	return err
}

// Hint writes a hint: to W as a JSON line with JSON, else to people (the
// caller's stderr).
func (p *ScanPrinter) Hint(people io.Writer, h Hint) error {
	if p.JSON {
		return p.line(findJSON{Kind: "garbled", Setting: h.Setting, Replies: h.Garbled})
	}
	where, why := "on this link", "perhaps answering later than -timeout"
	if h.Setting.Speed != 0 {
		where, why = "at "+h.Setting.String(), "perhaps at another speed or parity, or answering later than -timeout"
	}
	_, err := fmt.Fprintf(people, "m2m: hint: %s %d replies did not decode or answered no request of ours "+
		"(bad CRC, garbled, or late): something is there, %s\n", where, h.Garbled, why)
	return err
}

func (p *ScanPrinter) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = p.W.Write(append(b, '\n'))
	return err
}
