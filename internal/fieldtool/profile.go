package fieldtool

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// CSVOptions say how [ProfileFromCSV] reads a register map.
type CSVOptions struct {
	// File names the CSV in error messages ("map.csv").
	File string
	// Name is the profile's name; default File without directory and
	// extension.
	Name string
	// Comma is the field separator; 0 detects it from the header row
	// (the most frequent of ',', ';' and tab outside quotes).
	Comma rune
	// Modicon says the address column holds Modicon reference numbers
	// (40001, 300001): the table is taken from them (see [ParseModicon]).
	Modicon bool
	// Table is the table of rows without a table column (default holding).
	Table modbus.Table
	// KeepNames keeps the names as written; by default they are made
	// lower_snake_case ("Voltage L1-N" becomes voltage_l1_n), the form
	// that sits well in MQTT topics and NATS subjects.
	KeepNames bool
}

// csvColumns maps the header spellings vendors use to a profile key.
// Matching ignores case, spaces, '_', '-' and '.'.
var csvColumns = map[string]string{
	"name": "name", "point": "name", "parameter": "name", "tag": "name", "variable": "name", "quantity": "name",
	"address": "address", "register": "address", "reg": "address", "addr": "address", "registeraddress": "address",
	"offset": "offset", // value = raw*scale + offset, as in the profile
	"type":   "type", "datatype": "type", "format": "type", "dtype": "type",
	"unit": "unit", "units": "unit", "uom": "unit", "engineeringunit": "unit",
	"scale": "scale", "factor": "scale", "multiplier": "scale", "gain": "scale", "scalefactor": "scale",
	"table": "table", "function": "table", "registertype": "table", "area": "table",
	"wordorder": "word_order", "byteorder": "byte_order", "length": "length", "registers": "length",
	"size": "length", "bit": "bit",
	// Columns that describe rather than configure; read and ignored.
	"description": "", "comment": "", "comments": "", "notes": "", "note": "", "access": "", "rw": "",
	"readwrite": "", "range": "", "min": "", "max": "", "default": "",
}

func columnKey(h string) (string, bool) {
	k := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-', '.', '/':
			return -1
		}
		return unicode.ToLower(r)
	}, strings.TrimSpace(h))
	v, ok := csvColumns[k]
	return v, ok
}

// typeAliases are type spellings of vendor register maps (IEC 61131-3
// names among them) that are not the profile's own.
var typeAliases = map[string]modbus.Type{
	"float": modbus.Float32, "real": modbus.Float32, "f32": modbus.Float32, "ieee754": modbus.Float32,
	"float32": modbus.Float32, "fp32": modbus.Float32,
	"double": modbus.Float64, "lreal": modbus.Float64, "f64": modbus.Float64, "float64": modbus.Float64,
	"u16": modbus.Uint16, "uint": modbus.Uint16, "word": modbus.Uint16, "unsigned": modbus.Uint16, "ushort": modbus.Uint16,
	"s16": modbus.Int16, "i16": modbus.Int16, "int": modbus.Int16, "signed": modbus.Int16, "short": modbus.Int16,
	"u32": modbus.Uint32, "dword": modbus.Uint32, "udint": modbus.Uint32, "ulong": modbus.Uint32,
	"s32": modbus.Int32, "i32": modbus.Int32, "dint": modbus.Int32, "long": modbus.Int32,
	"u64": modbus.Uint64, "ulint": modbus.Uint64, "lword": modbus.Uint64,
	"s64": modbus.Int64, "i64": modbus.Int64, "lint": modbus.Int64,
	"ascii": modbus.String, "char": modbus.String, "str": modbus.String, "text": modbus.String,
}

var typeNames = []string{"bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}

// parseType reads a type cell: the profile's names, the library's aliases
// and the vendor spellings of typeAliases, in any case.
func parseType(s string) (modbus.Type, error) {
	low := strings.ToLower(strings.TrimSpace(s))
	if t, ok := typeAliases[low]; ok {
		return t, nil
	}
	var t modbus.Type
	if err := t.UnmarshalText([]byte(low)); err == nil {
		return t, nil
	}
	if near := nearest(low, typeNames); near != "" {
		return "", fmt.Errorf("type %q: did you mean %s?", s, near)
	}
	return "", fmt.Errorf("type %q: unknown (want %s, or a vendor spelling such as float, real, dint, u16)",
		s, strings.Join(typeNames, ", "))
}

// nearest returns the word of words within edit distance 2 of s (the
// closest, the first of equals), or "".
func nearest(s string, words []string) string {
	best, bestD := "", 3
	for _, w := range words {
		if d := editDistance(s, w); d < bestD {
			best, bestD = w, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: the
// Levenshtein distance with a transposition of two neighbours counted as
// one edit ("flaot" is one edit from "float").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// detectComma picks the separator of the header line: the most frequent of
// ',', ';' and tab outside double quotes (',' when none occurs).
func detectComma(header string) rune {
	counts := map[rune]int{}
	quoted := false
	for _, r := range header {
		switch {
		case r == '"':
			quoted = !quoted
		case !quoted && (r == ',' || r == ';' || r == '\t'):
			counts[r]++
		}
	}
	best := ','
	for _, r := range []rune{';', '\t'} {
		if counts[r] > counts[best] {
			best = r
		}
	}
	return best
}

// snakeName makes a point name lower_snake_case: letters and digits kept
// (lower case), every other run of characters one '_', none at the ends.
func snakeName(s string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if sep && b.Len() > 0 {
				b.WriteByte('_')
			}
			sep = false
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		sep = true
	}
	return b.String()
}

// parseAddress reads an address cell: decimal, or hexadecimal with 0x.
func parseAddress(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		n, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			return 0, fmt.Errorf("address %q: not a hexadecimal number", s)
		}
		return n, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("address %q: not a number (decimal, or hexadecimal as 0x1A)", s)
	}
	return n, nil
}

// parseNumber reads a scale or offset cell; with ';' as separator a decimal
// comma (0,1) is read as a decimal point, as European spreadsheets write
// it.
func parseNumber(s string, comma rune) (float64, error) {
	s = strings.TrimSpace(s)
	if comma == ';' && strings.Count(s, ",") == 1 && !strings.Contains(s, ".") {
		s = strings.Replace(s, ",", ".", 1)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("not a finite number")
	}
	return f, nil
}

// ProfileFromCSV reads a vendor register map — a header row, then one row
// per point with the columns name, address, type and optionally unit,
// scale, offset, table, word_order, byte_order, length, bit (common vendor
// spellings of the headers are understood, description-like columns are
// ignored) — and returns it as a profile checked by the modbus package's
// own [modbus.Profile.Validate].
//
// It tolerates what spreadsheets write: a UTF-8 byte order mark, ';' or tab
// separators, quoted fields, a decimal comma with ';', blank lines and
// lines starting with '#', hexadecimal addresses (0x1A), and with
// opt.Modicon, Modicon reference numbers. Every problem is reported at
// once, each as "file:line: ..." with the CSV line of the row (and the
// column), in the order of the file; warnings (columns ignored) come back
// separately.
func ProfileFromCSV(r io.Reader, opt CSVOptions) (p *modbus.Profile, warnings []string, err error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", opt.File, err)
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	file := opt.File
	if file == "" {
		file = "csv"
	}
	comma := opt.Comma
	if comma == 0 {
		first := string(data)
		for _, l := range strings.Split(first, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				first = l
				break
			}
		}
		comma = detectComma(first)
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = comma
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%s: empty: want a header row (name, address, type, unit, scale) and a row per point", file)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, csvErr(err))
	}
	hline, _ := cr.FieldPos(0)
	var errs []error
	cols := map[string]int{}
	for i, h := range header {
		key, ok := columnKey(h)
		switch {
		case !ok:
			warnings = append(warnings, fmt.Sprintf("%s:%d: column %q ignored (not one of name, address, type, unit, scale, "+
				"offset, table, word_order, byte_order, length, bit)", file, hline, h))
		case key == "":
		case cols[key] != 0:
			errs = append(errs, fmt.Errorf("%s:%d: column %q: a second %s column (the first is column %d)", file, hline, h, key, cols[key]))
		default:
			cols[key] = i + 1 // 1-based; 0 is absent
		}
	}
	for _, need := range []string{"name", "address", "type"} {
		if cols[need] == 0 {
			errs = append(errs, fmt.Errorf("%s:%d: no %s column (the header row has %q)", file, hline, need, header))
		}
	}
	if len(errs) > 0 {
		return nil, warnings, errors.Join(errs...)
	}
	if opt.Modicon && cols["table"] != 0 {
		return nil, warnings, fmt.Errorf("%s:%d: a table column and -modicon: the Modicon numbers say the table; drop one", file, hline)
	}
	defTable := opt.Table
	if defTable == "" {
		defTable = modbus.Holding
	}
	name := opt.Name
	if name == "" {
		name = opt.File
		if i := strings.LastIndexAny(name, `/\`); i >= 0 {
			name = name[i+1:]
		}
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			name = name[:i]
		}
	}
	prof := &modbus.Profile{Name: name}
	var lines []int                          // CSV line of each point
	reported := map[int]map[string]bool{}    // line -> columns already reported
	modiconLike, modiconLine := uint64(0), 0 // the first address that looks like a Modicon number
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && pe.Err != csv.ErrQuote && pe.Err != csv.ErrBareQuote {
				errs = append(errs, fmt.Errorf("%s:%d: %w", file, pe.Line, pe.Err))
				continue
			}
			// A quoting error leaves the reader out of step: stop here.
			errs = append(errs, fmt.Errorf("%s: %w", file, csvErr(err)))
			break
		}
		line, _ := cr.FieldPos(0)
		if blank(rec) {
			continue
		}
		cell := func(key string) string {
			if i := cols[key]; i > 0 && i <= len(rec) {
				return strings.TrimSpace(rec[i-1])
			}
			return ""
		}
		reported[line] = map[string]bool{}
		rowErr := func(key, format string, args ...any) {
			reported[line][key] = true
			errs = append(errs, fmt.Errorf("%s:%d: %s: %s", file, line, key, fmt.Sprintf(format, args...)))
		}
		pt := modbus.Point{Name: cell("name"), Table: defTable, Unit: cell("unit")}
		if !opt.KeepNames {
			pt.Name = snakeName(pt.Name)
		}
		if pt.Name == "" {
			rowErr("name", "empty")
		}
		if s := cell("table"); s != "" {
			if err := pt.Table.UnmarshalText([]byte(s)); err != nil {
				rowErr("table", "%q: want holding, input, coil or discrete", s)
			}
		}
		if s := cell("type"); s == "" {
			rowErr("type", "empty")
		} else if t, err := parseType(s); err != nil {
			reported[line]["type"] = true
			errs = append(errs, fmt.Errorf("%s:%d: %w", file, line, err))
		} else {
			pt.Type = t
		}
		switch s := cell("address"); {
		case s == "":
			rowErr("address", "empty")
		case opt.Modicon:
			t, a, err := ParseModicon(s)
			if err != nil {
				rowErr("address", "%v", err)
			}
			pt.Table, pt.Address = t, a
		default:
			n, err := parseAddress(s)
			if err == nil && modiconLine == 0 && (n >= 30001 && n <= 49999 || n >= 300001 && n <= 465536) {
				modiconLike, modiconLine = n, line
			}
			if err != nil {
				reported[line]["address"] = true
				errs = append(errs, fmt.Errorf("%s:%d: %w", file, line, err))
			} else if n > math.MaxUint16 {
				hint := ""
				if n >= 30001 && n <= 465536 {
					hint = " (a Modicon number? then give -modicon)"
				}
				rowErr("address", "%d is above 65535%s", n, hint)
			} else {
				pt.Address = uint16(n)
			}
		}
		if s := cell("scale"); s != "" {
			f, err := parseNumber(s, comma)
			if err != nil {
				rowErr("scale", "%q: %v", s, err)
			}
			if f != 1 {
				pt.Scale = f
			}
		}
		if s := cell("offset"); s != "" {
			f, err := parseNumber(s, comma)
			if err != nil {
				rowErr("offset", "%q: %v", s, err)
			}
			pt.Offset = f
		}
		if s := cell("word_order"); s != "" {
			if err := pt.WordOrder.UnmarshalText([]byte(s)); err != nil {
				rowErr("word_order", "%v", fieldMsg(err))
			}
		}
		if s := cell("byte_order"); s != "" {
			if err := pt.ByteOrder.UnmarshalText([]byte(s)); err != nil {
				rowErr("byte_order", "%v", fieldMsg(err))
			}
		}
		if s := cell("length"); s != "" {
			n, err := strconv.ParseUint(s, 10, 16)
			if err != nil {
				rowErr("length", "%q: want a number of registers", s)
			}
			pt.Length = uint16(n)
		}
		if s := cell("bit"); s != "" {
			n, err := strconv.ParseUint(s, 10, 8)
			if err != nil || n > 15 {
				rowErr("bit", "%q: want 0 to 15", s)
			} else {
				pt.Bit = modbus.BitOf(uint8(n))
			}
		}
		prof.Points = append(prof.Points, pt)
		lines = append(lines, line)
	}
	if !opt.Modicon && modiconLine > 0 {
		warnings = append(warnings, fmt.Sprintf("%s:%d: address %d looks like a Modicon number: if the map uses them, give -modicon",
			file, modiconLine, modiconLike))
	}
	if len(prof.Points) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no rows after the header", file))
	}
	// The modbus package's own rules: overlaps, lengths, bits, ranges ...
	if verr := prof.Validate(); verr != nil {
		for _, e := range unjoin(verr) {
			var fe *modbus.FieldError
			if errors.As(e, &fe) && fe.Index >= 0 && fe.Index < len(lines) {
				line := lines[fe.Index]
				if reported[line][fe.Field] {
					continue // said already, in the CSV's terms
				}
				// "point 3" is the fourth row: say its line.
				msg := pointRef.ReplaceAllStringFunc(fe.Msg, func(m string) string {
					n, err := strconv.Atoi(strings.TrimPrefix(m, "point "))
					if err != nil || n < 0 || n >= len(lines) {
						return m
					}
					return "line " + strconv.Itoa(lines[n])
				})
				if fe.Hint != "" {
					msg += " (" + fe.Hint + ")"
				}
				errs = append(errs, fmt.Errorf("%s:%d: %s: %s", file, line, fe.Field, msg))
				continue
			}
			errs = append(errs, fmt.Errorf("%s: %w", file, e))
		}
	}
	if len(errs) > 0 {
		sortByLine(errs)
		return nil, warnings, errors.Join(errs...)
	}
	return prof, warnings, nil
}

var pointRef = regexp.MustCompile(`point \d+`)

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// fieldMsg is the message of a bridge field error from UnmarshalText, with
// its hint.
func fieldMsg(err error) string { return strings.TrimPrefix(err.Error(), ": ") }

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d, column %d: %w", pe.Line, pe.Column, pe.Err)
	}
	return err
}

// sortByLine orders "file:N: ..." errors by N, stably (the validation's
// errors come after the row's own otherwise).
func sortByLine(errs []error) {
	lineOf := func(e error) int {
		s := e.Error()
		_, rest, ok := strings.Cut(s, ":")
		if !ok {
			return math.MaxInt
		}
		num, _, _ := strings.Cut(rest, ":")
		n, err := strconv.Atoi(num)
		if err != nil {
			return math.MaxInt
		}
		return n
	}
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && lineOf(errs[j]) < lineOf(errs[j-1]); j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

// MarshalProfile writes p as a profile file in the format of the built-in
// profiles (one point per line, flow style), headed by comment, and checks
// that it loads back with [modbus.LoadProfile] to the same points.
func MarshalProfile(p *modbus.Profile, comment string) ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(p); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "points" {
			for _, pt := range doc.Content[i+1].Content {
				pt.Style = yaml.FlowStyle
			}
		}
	}
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimRight(comment, "\n"), "\n") {
		b.WriteString("# " + l + "\n")
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	back, err := modbus.LoadProfile(bytes.NewReader(b.Bytes()), "profile")
	if err != nil {
		return nil, fmt.Errorf("fieldtool: the profile written does not load back: %w", err)
	}
	if len(back.Points) != len(p.Points) {
		return nil, fmt.Errorf("fieldtool: the profile written loads back with %d points, not %d", len(back.Points), len(p.Points))
	}
	return b.Bytes(), nil
}
