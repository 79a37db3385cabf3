//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package spool

import "os"

// lockFile does nothing on systems without flock (Windows among them): two
// processes opening the same spool directory there are not detected.
func lockFile(*os.File) error { return nil }
