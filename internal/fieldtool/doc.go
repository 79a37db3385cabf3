// Package fieldtool is the logic of the m2m field tool (examples/m2m): it
// turns what a person types on site — a table and an address or a Modicon
// number, a type and its orders — into [modbus.Point] values, reads them
// with a [modbus.Client] and decodes them with the library's codecs, writes
// one through [modbus.Device.Write] (and so through the library's write
// rules), and prints samples as a table or as the bridge's JSON lines.
//
// It is internal: the command's output and flags are for people and may
// change; everything a program would embed (codecs, write rules, clients)
// is public in package modbus already. Its functions are safe for
// concurrent use; a [Printer] is not.
package fieldtool
