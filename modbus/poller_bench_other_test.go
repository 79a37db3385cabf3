//go:build !linux

package modbus_test

import "time"

// cpuTime and rssBytes are measured on Linux only; elsewhere BenchmarkFleet
// reports zeros for them.
func cpuTime() time.Duration { return 0 }

func rssBytes() int64 { return 0 }
