package sparkplug

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestBdSeqPersistsAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created on first use
	var got []uint64
	for restart := 0; restart < 3; restart++ {
		s := bdSeqStore{dir: dir} // a new process: nothing in memory
		for connect := 0; connect < 2; connect++ {
			n, err := s.next()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, n)
		}
	}
	for i, n := range got {
		if n != uint64(i) {
			t.Fatalf("bdSeq of connect %d = %d, want %d (all: %v)", i, n, i, got)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, bdSeqFileName))
	if err != nil || strings.TrimSpace(string(b)) != "5" {
		t.Fatalf("file holds %q, %v; want 5", b, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state_dir holds %d entries, want only %s (no temporary files left)", len(entries), bdSeqFileName)
	}
}

func TestBdSeqWraps(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, bdSeqFileName), []byte("254\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := bdSeqStore{dir: dir}
	for _, want := range []uint64{255, 0, 1} {
		n, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("bdSeq = %d, want %d", n, want)
		}
	}
}

func TestBdSeqDamagedFile(t *testing.T) {
	for _, content := range []string{"", "abc", "256", "-1", "1.5"} {
		t.Run(content, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, bdSeqFileName)
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			n, err := bdSeqStore{dir: dir}.next()
			if err == nil {
				t.Fatalf("next() = %d, nil; want an error, not a fresh start that may repeat the last bdSeq", n)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if b, _ := os.ReadFile(path); string(b) != content {
				t.Errorf("file changed to %q", b)
			}
		})
	}
}

func TestBdSeqUnwritableDir(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Skip("permissions are not enforced for this user")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if n, err := (bdSeqStore{dir: dir}).next(); err == nil {
		t.Fatalf("next() = %d, nil in a read-only directory; want an error", n)
	}
}

func TestBdSeqStateDirIsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (bdSeqStore{dir: f}).next(); err == nil || !strings.Contains(err.Error(), "state_dir") {
		t.Fatalf("err = %v, want a state_dir error", err)
	}
}
