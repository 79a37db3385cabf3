// Package testline emulates a serial line for tests of serial settings
// detection: a pseudo-terminal for the code under test, a relay that reads
// the line settings that code asked for, and a UART model ([Receive]) that
// garbles the bytes as a real line with mismatched speed or parity would,
// or passes them when the settings match the device's. A socat
// pseudo-terminal pair carries bytes but ignores speed and parity; this is
// the line that does not.
//
// It is for tests only, and works on Linux (see [Line] for how the settings
// are read); a Line is safe for concurrent use.
package testline
