package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/m2mbridge/m2mbridge/internal/fieldtool"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// exitStatus is the exit status line of the commands whose codes read
// differently from read's and write's.
var exitStatus = map[string]string{
	"scan":    "0 a unit was found, 1 none answered (or the link cannot be opened), 2 usage error.",
	"browse":  "0 ok, 1 the server failed (unreachable, refused the session, unknown -root), 2 usage error.",
	"profile": "0 the profile was written, 1 the CSV has errors (all listed, by line; nothing written), 2 usage error.",
}

// errCSV: the CSV's errors were printed (exit 1).
var errCSV = fmt.Errorf("%w: register map has errors", errReported)

func runProfile(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("profile", "m2m profile -in map.csv [-out profile.yaml] [-name NAME] [-modicon] [-table T] [-sep ;] [-keep-names]", stderr)
	in := fs.String("in", "", "the vendor register map: a CSV with a header row and the columns name, address, type "+
		"(and unit, scale, offset, table, word_order, byte_order, length, bit); required")
	out := fs.String("out", "", "the profile file to write (default: stdout); the gateway's profile: key takes its path")
	name := fs.String("name", "", "the profile's name (default: the CSV's file name without extension)")
	modicon := fs.Bool("modicon", false, "the address column holds Modicon numbers (40001 is holding address 0, 30001 input address 0)")
	table := fs.String("table", "holding", "the table of rows without a table column: holding, input, coil or discrete")
	sep := fs.String("sep", "", "the field separator: , ; or tab (default: detected from the header row)")
	keep := fs.Bool("keep-names", false, "keep the names as written (default: lower_snake_case, \"Voltage L1\" becomes voltage_l1)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	var errs []error
	if len(pos) != 0 {
		errs = append(errs, fmt.Errorf("profile takes no arguments, got %q (the CSV is -in)", pos))
	}
	if *in == "" {
		errs = append(errs, errors.New("-in is required: the register map CSV"))
	}
	opt := fieldtool.CSVOptions{File: *in, Name: *name, Modicon: *modicon, KeepNames: *keep}
	if err := opt.Table.UnmarshalText([]byte(*table)); err != nil {
		errs = append(errs, fmt.Errorf("-table: %w", err))
	}
	switch *sep {
	case "":
	case ",", ";":
		opt.Comma = rune((*sep)[0])
	case "tab", "\t", `\t`:
		opt.Comma = '\t'
	default:
		errs = append(errs, fmt.Errorf("-sep %q: want , ; or tab", *sep))
	}
	if err := errors.Join(errs...); err != nil {
		return &fieldtool.UsageError{Err: err}
	}
	f, err := os.Open(*in)
	if err != nil {
		return &fieldtool.UsageError{Err: err}
	}
	defer f.Close()
	prof, warnings, err := fieldtool.ProfileFromCSV(f, opt)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "m2m: warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return errCSV
	}
	data, err := fieldtool.MarshalProfile(prof, fmt.Sprintf("Made by m2m profile from %s (%d points); check it against the device with m2m read.",
		filepath.Base(*in), len(prof.Points)))
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(data)
		return err
	}
	if err := writeFileAtomic(*out, data); err != nil {
		return err
	}
	// The file as the gateway will load it.
	if _, err := modbus.LoadProfileFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "m2m: wrote %s: profile %q, %d points\n", *out, prof.Name, len(prof.Points))
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
