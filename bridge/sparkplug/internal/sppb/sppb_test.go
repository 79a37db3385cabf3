package sppb

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"
)

// metricCases has one metric per Sparkplug datatype, holding the value in
// the field the Sparkplug 3.0 spec assigns to it (6.4.17, "Datatype Details").
func metricCases() map[DataType]*Payload_Metric {
	m := func(name string, dt DataType, alias uint64) *Payload_Metric {
		return &Payload_Metric{
			Name:      proto.String(name),
			Alias:     proto.Uint64(alias),
			Timestamp: proto.Uint64(1764547200123),
			Datatype:  proto.Uint32(uint32(dt)),
		}
	}
	with := func(p *Payload_Metric, v isPayload_Metric_Value) *Payload_Metric {
		p.Value = v
		return p
	}
	// The spec gives signed integers an unsigned protobuf field (uint32 up
	// to Int32, uint64 for Int64); a negative value rides as its two's
	// complement.
	i8 := int8(-5)
	i16 := int16(-300)
	i32 := int32(math.MinInt32)
	i64 := int64(math.MinInt64)
	return map[DataType]*Payload_Metric{
		DataType_Unknown:  m("unknown/null", DataType_Unknown, 0),
		DataType_Int8:     with(m("int8", DataType_Int8, 1), &Payload_Metric_IntValue{IntValue: uint32(int32(i8))}),
		DataType_Int16:    with(m("int16", DataType_Int16, 2), &Payload_Metric_IntValue{IntValue: uint32(int32(i16))}),
		DataType_Int32:    with(m("int32", DataType_Int32, 3), &Payload_Metric_IntValue{IntValue: uint32(i32)}),
		DataType_Int64:    with(m("int64", DataType_Int64, 4), &Payload_Metric_LongValue{LongValue: uint64(i64)}),
		DataType_UInt8:    with(m("uint8", DataType_UInt8, 5), &Payload_Metric_IntValue{IntValue: math.MaxUint8}),
		DataType_UInt16:   with(m("uint16", DataType_UInt16, 6), &Payload_Metric_IntValue{IntValue: math.MaxUint16}),
		DataType_UInt32:   with(m("uint32", DataType_UInt32, 7), &Payload_Metric_IntValue{IntValue: math.MaxUint32}),
		DataType_UInt64:   with(m("uint64", DataType_UInt64, 8), &Payload_Metric_LongValue{LongValue: math.MaxUint64}),
		DataType_Float:    with(m("float", DataType_Float, 9), &Payload_Metric_FloatValue{FloatValue: -1.5e-7}),
		DataType_Double:   with(m("double", DataType_Double, 10), &Payload_Metric_DoubleValue{DoubleValue: math.MaxFloat64}),
		DataType_Boolean:  with(m("boolean", DataType_Boolean, 11), &Payload_Metric_BooleanValue{BooleanValue: true}),
		DataType_String:   with(m("string", DataType_String, 12), &Payload_Metric_StringValue{StringValue: "°C ünïcode"}),
		DataType_DateTime: with(m("datetime", DataType_DateTime, 13), &Payload_Metric_LongValue{LongValue: 1764547200123}),
		DataType_Text:     with(m("text", DataType_Text, 14), &Payload_Metric_StringValue{StringValue: "line 1\nline 2"}),
		DataType_UUID:     with(m("uuid", DataType_UUID, 15), &Payload_Metric_StringValue{StringValue: "123e4567-e89b-12d3-a456-426614174000"}),
		DataType_DataSet: with(m("dataset", DataType_DataSet, 16), &Payload_Metric_DatasetValue{DatasetValue: &Payload_DataSet{
			NumOfColumns: proto.Uint64(2),
			Columns:      []string{"a", "b"},
			Types:        []uint32{uint32(DataType_Int32), uint32(DataType_String)},
			Rows: []*Payload_DataSet_Row{{Elements: []*Payload_DataSet_DataSetValue{
				{Value: &Payload_DataSet_DataSetValue_IntValue{IntValue: 7}},
				{Value: &Payload_DataSet_DataSetValue_StringValue{StringValue: "x"}},
			}}},
		}}),
		DataType_Bytes: with(m("bytes", DataType_Bytes, 17), &Payload_Metric_BytesValue{BytesValue: []byte{0, 1, 0xfe, 0xff}}),
		DataType_File: func() *Payload_Metric {
			p := with(m("file", DataType_File, 18), &Payload_Metric_BytesValue{BytesValue: []byte("hello")})
			p.Metadata = &Payload_MetaData{FileName: proto.String("hello.txt"), Size: proto.Uint64(5), Md5: proto.String("5d41402abc4b2a76b9719d911017c592")}
			return p
		}(),
		DataType_Template: with(m("template", DataType_Template, 19), &Payload_Metric_TemplateValue{TemplateValue: &Payload_Template{
			Version:     proto.String("1"),
			TemplateRef: proto.String("Motor"),
			Metrics:     []*Payload_Metric{{Name: proto.String("rpm"), Datatype: proto.Uint32(uint32(DataType_Double)), Value: &Payload_Metric_DoubleValue{DoubleValue: 1450}}},
			Parameters:  []*Payload_Template_Parameter{{Name: proto.String("poles"), Type: proto.Uint32(uint32(DataType_UInt32)), Value: &Payload_Template_Parameter_IntValue{IntValue: 4}}},
		}}),
		// PropertySet and PropertySetList are property types; they are
		// carried in the properties of the metric below.
		DataType_PropertySet: func() *Payload_Metric {
			p := with(m("properties", DataType_Double, 20), &Payload_Metric_DoubleValue{DoubleValue: 230.5})
			p.Properties = &Payload_PropertySet{
				Keys: []string{"engUnit", "Quality", "nested", "list"},
				Values: []*Payload_PropertyValue{
					{Type: proto.Uint32(uint32(DataType_String)), Value: &Payload_PropertyValue_StringValue{StringValue: "V"}},
					{Type: proto.Uint32(uint32(DataType_Int32)), Value: &Payload_PropertyValue_IntValue{IntValue: 192}},
					{Type: proto.Uint32(uint32(DataType_PropertySet)), Value: &Payload_PropertyValue_PropertysetValue{PropertysetValue: &Payload_PropertySet{
						Keys:   []string{"k"},
						Values: []*Payload_PropertyValue{{Type: proto.Uint32(uint32(DataType_Boolean)), IsNull: proto.Bool(true)}},
					}}},
					{Type: proto.Uint32(uint32(DataType_PropertySetList)), Value: &Payload_PropertyValue_PropertysetsValue{PropertysetsValue: &Payload_PropertySetList{
						Propertyset: []*Payload_PropertySet{{Keys: []string{"n"}, Values: []*Payload_PropertyValue{{Type: proto.Uint32(uint32(DataType_Int64)), Value: &Payload_PropertyValue_LongValue{LongValue: 1}}}}},
					}}},
				},
			}
			return p
		}(),
		DataType_PropertySetList: func() *Payload_Metric {
			p := m("null historical", DataType_Float, 21)
			p.IsNull = proto.Bool(true)
			p.IsHistorical = proto.Bool(true)
			p.IsTransient = proto.Bool(true)
			return p
		}(),
		// Arrays are packed little-endian into bytes_value (spec 6.4.17).
		DataType_Int8Array:     with(m("int8[]", DataType_Int8Array, 22), &Payload_Metric_BytesValue{BytesValue: []byte{0xff, 0x01}}),
		DataType_Int16Array:    with(m("int16[]", DataType_Int16Array, 23), &Payload_Metric_BytesValue{BytesValue: []byte{0xfe, 0xff, 0x01, 0x00}}),
		DataType_Int32Array:    with(m("int32[]", DataType_Int32Array, 24), &Payload_Metric_BytesValue{BytesValue: []byte{1, 0, 0, 0}}),
		DataType_Int64Array:    with(m("int64[]", DataType_Int64Array, 25), &Payload_Metric_BytesValue{BytesValue: []byte{1, 0, 0, 0, 0, 0, 0, 0}}),
		DataType_UInt8Array:    with(m("uint8[]", DataType_UInt8Array, 26), &Payload_Metric_BytesValue{BytesValue: []byte{0xff}}),
		DataType_UInt16Array:   with(m("uint16[]", DataType_UInt16Array, 27), &Payload_Metric_BytesValue{BytesValue: []byte{0xff, 0xff}}),
		DataType_UInt32Array:   with(m("uint32[]", DataType_UInt32Array, 28), &Payload_Metric_BytesValue{BytesValue: []byte{0xff, 0xff, 0xff, 0xff}}),
		DataType_UInt64Array:   with(m("uint64[]", DataType_UInt64Array, 29), &Payload_Metric_BytesValue{BytesValue: bytes.Repeat([]byte{0xff}, 8)}),
		DataType_FloatArray:    with(m("float[]", DataType_FloatArray, 30), &Payload_Metric_BytesValue{BytesValue: []byte{0, 0, 0xc0, 0x3f}}),
		DataType_DoubleArray:   with(m("double[]", DataType_DoubleArray, 31), &Payload_Metric_BytesValue{BytesValue: []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x3f}}),
		DataType_BooleanArray:  with(m("boolean[]", DataType_BooleanArray, 32), &Payload_Metric_BytesValue{BytesValue: []byte{3, 0, 0, 0, 0xa0}}),
		DataType_StringArray:   with(m("string[]", DataType_StringArray, 33), &Payload_Metric_BytesValue{BytesValue: []byte("a\x00bc\x00")}),
		DataType_DateTimeArray: with(m("datetime[]", DataType_DateTimeArray, 34), &Payload_Metric_BytesValue{BytesValue: []byte{1, 0, 0, 0, 0, 0, 0, 0}}),
	}
}

func TestRoundTripEveryDataType(t *testing.T) {
	cases := metricCases()
	for v, name := range DataType_name {
		if _, ok := cases[DataType(v)]; !ok {
			t.Errorf("no round-trip case for datatype %s (%d)", name, v)
		}
	}
	for dt, m := range cases {
		t.Run(dt.String(), func(t *testing.T) {
			in := &Payload{Timestamp: proto.Uint64(1764547200999), Seq: proto.Uint64(uint64(dt)), Metrics: []*Payload_Metric{m}}
			b, err := proto.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			out := new(Payload)
			if err := proto.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(in, out) {
				t.Errorf("round trip changed the payload:\n in  %v\n out %v", in, out)
			}
		})
	}
}

func TestRoundTripWholePayload(t *testing.T) {
	in := &Payload{
		Timestamp: proto.Uint64(1764547200999),
		Seq:       proto.Uint64(255),
		Uuid:      proto.String("schema-1"),
		Body:      []byte{1, 2, 3},
	}
	for _, m := range metricCases() {
		in.Metrics = append(in.Metrics, m)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := new(Payload)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("round trip changed the payload")
	}
	if got := len(out.GetMetrics()); got != len(in.Metrics) {
		t.Fatalf("%d metrics back, want %d", got, len(in.Metrics))
	}
}

// TestWireBytes pins a few encodings by hand so that a field-number mistake
// in the .proto or the generator would show: Payload.seq is field 3,
// Metric.int_value field 10, Metric.long_value field 11 (sparkplug_b.proto).
func TestWireBytes(t *testing.T) {
	tests := []struct {
		name string
		in   *Payload
		want []byte
	}{
		{"seq", &Payload{Seq: proto.Uint64(1)}, []byte{0x18, 0x01}},
		{"int_value", &Payload{Metrics: []*Payload_Metric{{Value: &Payload_Metric_IntValue{IntValue: 1}}}}, []byte{0x12, 0x02, 0x50, 0x01}},
		{"long_value alias", &Payload{Metrics: []*Payload_Metric{{Alias: proto.Uint64(2), Value: &Payload_Metric_LongValue{LongValue: 3}}}}, []byte{0x12, 0x04, 0x10, 0x02, 0x58, 0x03}},
		{"bdSeq birth metric", &Payload{Metrics: []*Payload_Metric{{Name: proto.String("bdSeq"), Datatype: proto.Uint32(uint32(DataType_Int64)), Value: &Payload_Metric_LongValue{LongValue: 0}}}},
			[]byte{0x12, 0x0b, 0x0a, 0x05, 'b', 'd', 'S', 'e', 'q', 0x20, 0x04, 0x58, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := proto.MarshalOptions{Deterministic: true}.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got % x, want % x", got, tt.want)
			}
		})
	}
}
