package sparkplug

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// bdSeqFileName is the file in the state directory that holds the bdSeq of
// the last MQTT CONNECT, as decimal text.
const bdSeqFileName = "bdseq"

// bdSeqStore hands out the birth/death sequence number (bdSeq) of each MQTT
// CONNECT and keeps the last one in a file of the state directory, so that a
// restarted edge node never reuses its previous session's bdSeq: a host
// application pairs an NDEATH with the NBIRTH of the same bdSeq and ignores a
// Will that does not match (spec 4.2.1.1.2 tck-id-topics-nbirth-bdseq-increment,
// 5.4 will-message-payload-bdSeq, 5.5).
//
// One edge node owns a state directory; two processes sharing one would hand
// out the same numbers. A bdSeqStore is not safe for concurrent use.
type bdSeqStore struct {
	dir string
}

// next returns the bdSeq for the next CONNECT: 0 the first time the
// directory is used, then one more than the last value, 255 followed by 0.
// The value is on disk (written to a temporary file, synced, renamed over
// the old one, the directory synced) before next returns, so a crash at any
// point leaves the old or the new value, never a torn one. The directory is
// created when absent. A file that holds anything but a number 0–255 is an
// error, not a fresh start: starting again at 0 could repeat the last
// session's value.
func (s bdSeqStore) next() (uint64, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return 0, fmt.Errorf("sparkplug: state_dir: %w", err)
	}
	path := filepath.Join(s.dir, bdSeqFileName)
	var n uint64
	switch last, err := readBdSeq(path); {
	case errors.Is(err, fs.ErrNotExist):
		n = 0
	case err != nil:
		return 0, err
	default:
		n = (last + 1) % 256
	}
	if err := writeFileAtomic(path, []byte(strconv.FormatUint(n, 10)+"\n")); err != nil {
		return 0, fmt.Errorf("sparkplug: saving bdSeq: %w", err)
	}
	return n, nil
}

func readBdSeq(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if perr != nil || n > 255 {
		return 0, fmt.Errorf("sparkplug: %s holds %q, not a bdSeq 0-255; remove it only if no host application remembers this edge node's last bdSeq", path, truncate(string(b), 20))
	}
	return n, nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	// The rename is durable only once the directory is synced. Some
	// systems (Windows) cannot open a directory for syncing; there the
	// rename is as durable as the file system makes it.
	if d, err := os.Open(dir); err == nil {
		serr := d.Sync()
		d.Close()
		if serr != nil && !errors.Is(serr, os.ErrInvalid) && !errors.Is(serr, errors.ErrUnsupported) {
			return serr
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
