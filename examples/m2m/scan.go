package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/internal/fieldtool"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// errNotFound: the scan ran and no unit answered (exit 1, said already).
var errNotFound = fmt.Errorf("%w: no unit found", errReported)

func runScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("scan", "m2m scan URL [-units 1-247] [-speeds 9600,19200,38400,115200] [-parity none,even,odd] "+
		"[-register holding:0] [-timeout D] [-max-time D] [-first] [-json]", stderr)
	units := fs.String("units", "", "unit ids to try: a list of ids and ranges (default 1-247 with RTU or ASCII framing, 0-247 on a network link)")
	speeds := fs.String("speeds", "", "rtu://, ascii://: baud rates to try (default 9600,19200,38400,115200, or the URL's speed= alone)")
	parity := fs.String("parity", "", "rtu://, ascii://: parities to try (default none,even,odd, or the URL's parity= alone)")
	register := fs.String("register", "holding:0", "what to read from each unit: table:address (input:0, coil:0) or a Modicon number (40001); "+
		"any answer, an exception too, proves the unit is there")
	timeout := fs.Duration("timeout", 0, "how long each try waits for an answer (default 200ms on a serial line, 500ms on a network link)")
	maxTime := fs.Duration("max-time", 15*time.Minute, "stop the scan after this long and report what was found (0: no limit)")
	first := fs.Bool("first", false, "serial line: stop after the first setting at which a unit answered (every device on a bus talks alike)")
	asJSON := fs.Bool("json", false, "print JSON lines (one per unit found, one per setting with garbled replies) instead of a table")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("scan wants one URL, got %d arguments %q (see m2m scan -h)", len(pos), pos)
	}
	ep, err := modbus.ParseURL(pos[0])
	if err != nil {
		return &fieldtool.UsageError{Err: err}
	}
	cfg := fieldtool.ScanConfig{URL: pos[0], Timeout: *timeout, MaxTime: *maxTime, First: *first}
	var errs []error
	if cfg.Register, err = fieldtool.ParseRegister(*register); err != nil {
		errs = append(errs, fmt.Errorf("-register: %w", err))
	}
	if *units == "" {
		*units = "0-247"
		if ep.SerialFramed() {
			*units = "1-247"
		}
	}
	if cfg.Units, err = fieldtool.ParseUnits(*units); err != nil {
		errs = append(errs, fmt.Errorf("-units: %w", err))
	}
	serial := fieldtool.SerialLine(ep)
	if serial {
		urlSpeed := queryHas(pos[0], "speed", "baud")
		urlParity := queryHas(pos[0], "parity")
		if *speeds == "" && !urlSpeed {
			*speeds = "9600,19200,38400,115200"
		}
		if *parity == "" && !urlParity {
			*parity = "none,even,odd"
		}
	}
	if *speeds != "" {
		if cfg.Speeds, err = fieldtool.ParseSpeeds(*speeds); err != nil {
			errs = append(errs, fmt.Errorf("-speeds: %w", err))
		}
	}
	if *parity != "" {
		if cfg.Parities, err = fieldtool.ParseParities(*parity); err != nil {
			errs = append(errs, fmt.Errorf("-parity: %w", err))
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 500 * time.Millisecond
		if serial {
			cfg.Timeout = 200 * time.Millisecond
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &fieldtool.UsageError{Err: err}
	}
	tries, worst, err := cfg.Check()
	if err != nil {
		return err
	}
	limit := ""
	if cfg.MaxTime > 0 && worst > cfg.MaxTime {
		limit = fmt.Sprintf("; -max-time %v stops it sooner", cfg.MaxTime)
	}
	what := plural(len(cfg.Units), "unit id")
	if n := tries / len(cfg.Units); serial {
		what = fmt.Sprintf("%s × %s = %s", what, plural(n, "serial setting"), plural(tries, "try"))
	}
	fmt.Fprintf(stderr, "m2m: scan %s: %s, reading %s, %v each; at most %v%s\n",
		pos[0], what, cfg.Register, cfg.Timeout, roundDur(worst), limit)

	pp := &fieldtool.ProgressPrinter{W: stderr, TTY: isTerminal(stderr)}
	sp := &fieldtool.ScanPrinter{W: stdout, JSON: *asJSON, Register: cfg.Register}
	var printErr error
	cfg.Progress = pp.Update
	cfg.Found = func(f fieldtool.Find) {
		pp.Clear()
		if err := sp.Find(f); err != nil && printErr == nil {
			printErr = err
		}
	}
	res, err := fieldtool.Scan(ctx, cfg)
	pp.Clear()
	for _, h := range res.Hints {
		if perr := sp.Hint(stderr, h); perr != nil && printErr == nil {
			printErr = perr
		}
	}
	if err != nil {
		return err
	}
	if printErr != nil {
		return printErr
	}
	how := fmt.Sprintf("%d of %d tries in %v", res.Tries, res.Total, roundDur(res.Elapsed))
	switch {
	case res.Complete:
	case ctx.Err() != nil:
		how += ", interrupted"
	case cfg.First && len(res.Finds) > 0:
		how += ", stopped at the first setting with a find (-first)"
	default:
		how += fmt.Sprintf(", stopped by -max-time %v", cfg.MaxTime)
	}
	if len(res.Finds) == 0 {
		fmt.Fprintf(stderr, "m2m: no unit answered (%s)\n", how)
		return errNotFound
	}
	fmt.Fprintf(stderr, "m2m: found %d (%s); read one with: m2m read '%s' -unit %d ...\n", len(res.Finds), how, res.Finds[0].URL, res.Finds[0].Unit)
	return nil
}

// queryHas reports whether the URL's query sets one of keys.
func queryHas(raw string, keys ...string) bool {
	_, query, _ := strings.Cut(raw, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return false
	}
	for _, k := range keys {
		if q.Has(k) {
			return true
		}
	}
	return false
}

// plural is "1 try", "2 tries", "3 unit ids".
func plural(n int, word string) string {
	switch {
	case n == 1:
		return "1 " + word
	case strings.HasSuffix(word, "y"):
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(word, "y"))
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// roundDur rounds d for people: to 100µs below 10ms, to the millisecond
// below a second, 100ms below a minute, else to the second.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && fieldtool.IsTerminal(f)
}
