// Package testline emulates a serial line for tests of serial settings
// detection: a pseudo-terminal for the code under test, a relay that reads
// the line settings that code asked for, and a UART model ([Receive]) that
// garbles the bytes as a real line with mismatched speed or parity would,
// or passes them when the settings match the device's. A socat
// pseudo-terminal pair carries bytes but ignores speed and parity; this is
// the line that does not.
//
// It works on Linux (see [Line] for how the settings are read); a Line is
// safe for concurrent use. The tests use it directly; the command linesim
// puts one in front of a simulator on a pseudo-terminal (modbus-sim -pty),
// so that commissioning can be tried on one machine as on a real line.
package testline
