//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package spool

import "os"

// lockFile does nothing here: on Windows the cursor file is opened without
// FILE_SHARE_DELETE and segments cannot be deleted under another process,
// but two processes are not otherwise kept apart.
func lockFile(*os.File) error { return nil }
