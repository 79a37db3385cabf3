package opcua

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"
)

// This file is a size-bounded check of OPC UA binary messages (Part 6,
// 5.2), run by the guard (guard.go) on every message a server sends before
// the upstream client decodes it. The upstream decoder trusts the lengths
// it reads: a Variant's ArrayDimensionsLength is allocated before it is
// compared with the bytes left (12 bytes cost 4.6 GB), a negative array
// length panics in reflect.MakeSlice, dimensions whose product overflows
// int32 pass its check and are then expanded, and nested DiagnosticInfos,
// Variants and ExtensionObjects recurse without a limit. The check walks
// the same types the upstream decoder fills, allocates nothing in
// proportion to a declared length, and refuses a message in which any
// declared length exceeds the bytes that are left, a count is negative, a
// Variant's dimensions do not multiply to its length, or nesting is
// deeper than maxNesting.

// maxNesting bounds how deep Variants, DataValues, ExtensionObjects and
// DiagnosticInfos may nest in one message (the .NET stack uses 100 too).
const maxNesting = 100

// maxVariantArray is the upstream decoder's own element limit
// (ua.MaxVariantArrayLength), which it enforces after reading the length.
var maxVariantArray = func() int { return ua.MaxVariantArrayLength }

// errHostile is wrapped by the errors of the check.
var errHostile = errors.New("invalid encoding")

type checker struct {
	b     []byte
	pos   int
	depth int
	err   error
}

func (c *checker) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w at byte %d: %s", errHostile, c.pos, fmt.Sprintf(format, args...))
	}
}

func (c *checker) left() int { return len(c.b) - c.pos }

func (c *checker) skip(n int, what string) bool {
	if c.err != nil {
		return false
	}
	if n < 0 || n > c.left() {
		c.fail("%s: %d bytes needed, %d left", what, n, c.left())
		return false
	}
	c.pos += n
	return true
}

func (c *checker) u8() byte {
	if !c.skip(1, "byte") {
		return 0
	}
	return c.b[c.pos-1]
}

func (c *checker) u32() uint32 {
	if !c.skip(4, "uint32") {
		return 0
	}
	return binary.LittleEndian.Uint32(c.b[c.pos-4:])
}

// bytes checks a String, ByteString or XmlElement: an Int32 length, -1 for
// null, then that many bytes.
func (c *checker) bytes(what string) {
	n := c.u32()
	if c.err != nil || n == 0xffffffff {
		return
	}
	if int64(n) > int64(c.left()) {
		c.fail("%s of %d bytes declared, %d left", what, n, c.left())
		return
	}
	c.pos += int(n)
}

// count checks an array length: -1 (null) or at most one element per byte
// left, since no element takes less than a byte.
func (c *checker) count(what string) int {
	n := int32(c.u32())
	if c.err != nil || n == -1 {
		return 0
	}
	if n < -1 {
		c.fail("%s: negative length %d", what, n)
		return 0
	}
	if int64(n) > int64(c.left()) {
		c.fail("%s: %d elements declared, %d bytes left", what, n, c.left())
		return 0
	}
	return int(n)
}

func (c *checker) enter(what string) bool {
	c.depth++
	if c.depth > maxNesting {
		c.fail("%s nested deeper than %d", what, maxNesting)
		return false
	}
	return c.err == nil
}

func (c *checker) leave() { c.depth-- }

// nodeID checks a NodeId or ExpandedNodeId (Part 6, 5.2.2.9 and 5.2.2.10).
func (c *checker) nodeID(expanded bool) {
	mask := c.u8()
	switch mask & 0x0f {
	case 0:
		c.skip(1, "two-byte node id")
	case 1:
		c.skip(3, "four-byte node id")
	case 2:
		c.skip(6, "numeric node id")
	case 3, 5:
		c.skip(2, "node id namespace")
		c.bytes("node id")
	case 4:
		c.skip(18, "guid node id")
	default:
		c.fail("node id encoding %d", mask&0x0f)
	}
	if expanded {
		if mask&0x80 != 0 {
			c.bytes("namespace URI")
		}
		if mask&0x40 != 0 {
			c.skip(4, "server index")
		}
	}
}

func (c *checker) localizedText() {
	mask := c.u8()
	if mask&0x01 != 0 {
		c.bytes("locale")
	}
	if mask&0x02 != 0 {
		c.bytes("text")
	}
}

// diagnosticInfo checks a DiagnosticInfo (Part 6, 5.2.2.12).
func (c *checker) diagnosticInfo() {
	if !c.enter("DiagnosticInfo") {
		return
	}
	defer c.leave()
	mask := c.u8()
	for _, bit := range []byte{0x01, 0x02, 0x04, 0x08} {
		if mask&bit != 0 {
			c.skip(4, "diagnostic index")
		}
	}
	if mask&0x10 != 0 {
		c.bytes("additional info")
	}
	if mask&0x20 != 0 {
		c.skip(4, "inner status code")
	}
	if mask&0x40 != 0 {
		c.diagnosticInfo()
	}
}

// dataValue checks a DataValue (Part 6, 5.2.2.17).
func (c *checker) dataValue() {
	if !c.enter("DataValue") {
		return
	}
	defer c.leave()
	mask := c.u8()
	if mask&0x01 != 0 {
		c.variant()
	}
	for _, f := range []struct {
		bit byte
		n   int
	}{{0x02, 4}, {0x04, 8}, {0x10, 2}, {0x08, 8}, {0x20, 2}} {
		if mask&f.bit != 0 {
			c.skip(f.n, "data value field")
		}
	}
}

// variant checks a Variant (Part 6, 5.2.2.16).
func (c *checker) variant() {
	if !c.enter("Variant") {
		return
	}
	defer c.leave()
	mask := c.u8()
	typ := mask & 0x3f
	if c.err != nil || typ == 0 {
		return
	}
	if typ > 25 {
		c.fail("variant type %d", typ)
		return
	}
	if mask&0x80 == 0 {
		c.builtin(typ)
		return
	}
	n := int32(c.u32())
	switch {
	case c.err != nil:
		return
	case n < -1:
		c.fail("variant array: negative length %d", n)
		return
	case int(n) > maxVariantArray():
		c.fail("variant array: %d elements, more than %d", n, maxVariantArray())
		return
	case int64(n) > int64(c.left()):
		c.fail("variant array: %d elements declared, %d bytes left", n, c.left())
		return
	}
	for i := int32(0); i < n && c.err == nil; i++ {
		c.builtin(typ)
	}
	if mask&0x40 == 0 {
		return
	}
	dims := int32(c.u32())
	if c.err != nil {
		return
	}
	if dims < 0 || int64(dims)*4 > int64(c.left()) {
		c.fail("variant array dimensions: %d declared, %d bytes left", dims, c.left())
		return
	}
	product := int64(1)
	for i := int32(0); i < dims; i++ {
		d := int32(c.u32())
		if d < 1 {
			c.fail("variant array dimension %d is %d", i, d)
			return
		}
		product = min(product*int64(d), 1<<40) // no overflow: at most 2^40·2^31
	}
	if dims > 0 && product != int64(max(n, 0)) {
		c.fail("variant array dimensions multiply to %d, not its %d elements", product, n)
	}
}

// builtin checks one value of a built-in type (Part 6, 5.1.2).
func (c *checker) builtin(typ byte) {
	switch typ {
	case 1, 2, 3: // Boolean, SByte, Byte
		c.skip(1, "value")
	case 4, 5: // Int16, UInt16
		c.skip(2, "value")
	case 6, 7, 10, 19: // Int32, UInt32, Float, StatusCode
		c.skip(4, "value")
	case 8, 9, 11, 13: // Int64, UInt64, Double, DateTime
		c.skip(8, "value")
	case 12, 15, 16: // String, ByteString, XmlElement
		c.bytes("string")
	case 14: // Guid
		c.skip(16, "guid")
	case 17:
		c.nodeID(false)
	case 18:
		c.nodeID(true)
	case 20: // QualifiedName
		c.skip(2, "qualified name namespace")
		c.bytes("qualified name")
	case 21:
		c.localizedText()
	case 22:
		c.extensionObject()
	case 23:
		c.dataValue()
	case 24:
		c.variant()
	case 25:
		c.diagnosticInfo()
	}
}

// extensionObject checks an ExtensionObject (Part 6, 5.2.2.15) and, when
// the upstream decoder knows its type, the encoded body as that type.
func (c *checker) extensionObject() {
	if !c.enter("ExtensionObject") {
		return
	}
	defer c.leave()
	start := c.pos
	c.nodeID(true)
	idBytes := c.b[start:min(c.pos, len(c.b))]
	mask := c.u8()
	if c.err != nil || mask == 0 {
		return
	}
	n := c.u32()
	if c.err != nil || n == 0 || n == 0xffffffff {
		return
	}
	if int64(n) > int64(c.left()) {
		c.fail("extension object body of %d bytes declared, %d left", n, c.left())
		return
	}
	body := c.b[c.pos : c.pos+int(n)]
	c.pos += int(n)
	sub := &checker{b: body, depth: c.depth}
	if mask == 2 {
		sub.bytes("xml body")
	} else if t := extensionType(idBytes); t != nil {
		sub.value(t)
	}
	if sub.err != nil {
		c.err = sub.err
	}
}

var (
	timeType   = reflect.TypeOf(time.Time{})
	nodeIDType = reflect.TypeOf(ua.NodeID{})
	expIDType  = reflect.TypeOf(ua.ExpandedNodeID{})
	variantTyp = reflect.TypeOf(ua.Variant{})
	dvType     = reflect.TypeOf(ua.DataValue{})
	diagType   = reflect.TypeOf(ua.DiagnosticInfo{})
	eoType     = reflect.TypeOf(ua.ExtensionObject{})
	ltType     = reflect.TypeOf(ua.LocalizedText{})
	guidType   = reflect.TypeOf(ua.GUID{})
)

// value checks an encoded value of Go type t the way the upstream
// reflection decoder reads it: fields in order, arrays with an Int32
// length, and the types with their own encoding by hand.
func (c *checker) value(t reflect.Type) {
	if c.err != nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType:
		c.skip(8, "DateTime")
		return
	case nodeIDType:
		c.nodeID(false)
		return
	case expIDType:
		c.nodeID(true)
		return
	case variantTyp:
		c.variant()
		return
	case dvType:
		c.dataValue()
		return
	case diagType:
		c.diagnosticInfo()
		return
	case eoType:
		c.extensionObject()
		return
	case ltType:
		c.localizedText()
		return
	case guidType:
		c.skip(16, "guid")
		return
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int8, reflect.Uint8:
		c.skip(1, t.Name())
	case reflect.Int16, reflect.Uint16:
		c.skip(2, t.Name())
	case reflect.Int32, reflect.Uint32, reflect.Float32:
		c.skip(4, t.Name())
	case reflect.Int64, reflect.Uint64, reflect.Float64:
		c.skip(8, t.Name())
	case reflect.String:
		c.bytes(t.Name())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			c.bytes("ByteString")
			return
		}
		n := c.count("array of " + t.Elem().String())
		for i := 0; i < n && c.err == nil; i++ {
			c.value(t.Elem())
		}
	case reflect.Array:
		for i := 0; i < t.Len() && c.err == nil; i++ {
			c.value(t.Elem())
		}
	case reflect.Struct:
		if !c.enter(t.Name()) {
			return
		}
		for i := 0; i < t.NumField() && c.err == nil; i++ {
			c.value(t.Field(i).Type)
		}
		c.leave()
	default:
		// The upstream decoder refuses these types itself.
	}
}

// Types of the services and extension objects the upstream decoder knows,
// by the bytes of their encoding's node id. The upstream registries are
// not exported; a decode of just the type id tells the type, and that is
// cached.
var (
	typesMu  sync.Mutex
	svcTypes = map[string]reflect.Type{}
	extTypes = map[string]reflect.Type{}
	noType   = reflect.TypeOf(struct{}{})
	// probeBody is an ExtensionObject's binary encoding mask, a body
	// length of 1 and that one zero byte.
	probeBody = []byte{1, 1, 0, 0, 0, 0}
)

func lookupType(cache map[string]reflect.Type, id []byte, probe func() any) reflect.Type {
	typesMu.Lock()
	defer typesMu.Unlock()
	t, ok := cache[string(id)]
	if !ok {
		t = noType
		if v := probe(); v != nil {
			t = reflect.TypeOf(v)
		}
		if len(cache) < 4096 { // ids come from the peer: bound the cache
			cache[string(id)] = t
		}
	}
	if t == noType {
		return nil
	}
	return t
}

func serviceType(id []byte) reflect.Type {
	return lookupType(svcTypes, id, func() any {
		_, v, _ := ua.DecodeService(append([]byte{}, id...))
		return v
	})
}

func extensionType(id []byte) reflect.Type {
	return lookupType(extTypes, id, func() any {
		// A binary body of one zero byte: enough for the upstream
		// decoder to instantiate the registered type, too short to do
		// anything else.
		b := append(append([]byte{}, id...), probeBody...)
		var eo ua.ExtensionObject
		_, _ = eo.Decode(b)
		return eo.Value
	})
}

// checkService checks a service message body: the encoding's node id
// followed by the message. A type the upstream decoder does not know is
// not checked further (the decoder refuses it).
func checkService(body []byte) error {
	c := &checker{b: body}
	c.nodeID(true)
	if c.err != nil {
		return c.err
	}
	t := serviceType(body[:c.pos])
	if t == nil {
		return nil
	}
	c.value(t)
	return c.err
}
