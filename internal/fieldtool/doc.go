// Package fieldtool is the logic of the m2m field tool (examples/m2m): it
// turns what a person types on site — a table and an address or a Modicon
// number, a type and its orders — into [modbus.Point] values, reads them
// with a [modbus.Client] and decodes them with the library's codecs, writes
// one through [modbus.Device.Write] (and so through the library's write
// rules), and prints samples as a table or as the bridge's JSON lines.
//
// It also holds the commissioning steps before a configuration exists:
// [Scan] finds the unit ids that answer on a link, and on a serial line at
// which speed and parity (one [modbus.Client] per setting, any answer —
// an exception too — a find, garbled replies a [Hint]), with a
// [ProgressPrinter] and a [ScanPrinter]; [ProfileFromCSV] turns a vendor
// register map into a profile checked by [modbus.Profile.Validate], with
// every error by CSV line, and [MarshalProfile] writes it; [PrintTree] and
// [GatewayYAML] show an OPC UA address space browsed by
// [opcua.BrowseTree] and write a whole gateway file for it.
//
// It is internal: the command's output and flags are for people and may
// change; everything a program would embed (codecs, write rules, clients,
// browsing) is public in packages modbus and opcua already. Its functions
// are safe for concurrent use; a [Printer], [ScanPrinter] or
// [ProgressPrinter] is not.
package fieldtool
