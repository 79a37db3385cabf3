package opcua

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// encodeService encodes a service message as it travels in a MSG body:
// the encoding's node id, then the message.
func encodeService(t testing.TB, typeID uint16, v any) []byte {
	t.Helper()
	head, err := ua.NewFourByteExpandedNodeID(0, typeID).Encode()
	require.NoError(t, err)
	body, err := ua.Encode(v)
	require.NoError(t, err)
	return append(head, body...)
}

// marker is the encoding of Variant(int32(0x5A5A5A5A)), replaced by hostile
// bytes in the tests.
var marker = []byte{6, 0x5A, 0x5A, 0x5A, 0x5A}

func readResponseWithMarker(t testing.TB) []byte {
	res := &ua.ReadResponse{
		ResponseHeader: &ua.ResponseHeader{Timestamp: time.Now(), ServiceDiagnostics: &ua.DiagnosticInfo{}, AdditionalHeader: ua.NewExtensionObject(nil)},
		Results:        []*ua.DataValue{{EncodingMask: ua.DataValueValue | ua.DataValueStatusCode, Value: ua.MustVariant(int32(0x5A5A5A5A))}},
	}
	return encodeService(t, id.ReadResponse_Encoding_DefaultBinary, res)
}

func le32(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestCheckServiceRefuses feeds the check the variants that make the
// upstream decoder allocate gigabytes, panic or recurse without end.
func TestCheckServiceRefuses(t *testing.T) {
	deepDiag := bytes.Repeat([]byte{0x40}, 10_000)
	deepDiag = append(deepDiag, 0)
	deepVariant := bytes.Repeat([]byte{24}, 10_000) // Variant holding a Variant...
	deepVariant = append(deepVariant, 0)
	for _, tc := range []struct {
		name    string
		variant []byte
		want    string
	}{
		// Int32 array, no elements, 2^28 dimensions: 1 GiB upstream.
		{"huge dimensions", cat([]byte{0xC6}, le32(0), le32(1<<28)), "dimensions"},
		{"negative dimensions length", cat([]byte{0xC6}, le32(0), le32(-5)), "dimensions"},
		// 65536×65536 overflows int32 to 0 = the length: the upstream
		// check passes and it builds 2^32 empty slices.
		{"dimensions overflow", cat([]byte{0xC6}, le32(0), le32(2), le32(65536), le32(65536)), "multiply"},
		{"dimension zero", cat([]byte{0xC6}, le32(0), le32(1), le32(0)), "dimension 0 is 0"},
		{"negative array length", cat([]byte{0x86}, le32(-2)), "negative length"},
		{"array longer than the bytes", cat([]byte{0x86}, le32(60000)), "elements declared"},
		{"array above the upstream limit", cat([]byte{0x83}, le32(70000), bytes.Repeat([]byte{1}, 70000)), "more than"},
		{"string longer than the bytes", cat([]byte{12}, le32(1<<30)), "string"},
		{"deep diagnostic info", cat([]byte{25}, deepDiag), "nested deeper"},
		{"deep variant", deepVariant, "nested deeper"},
		{"bad type", []byte{40}, "variant type"},
		{"extension object body longer than the bytes", cat([]byte{22, 1, 0, 0x33, 0x01, 1}, le32(1<<30)), "extension object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := bytes.Replace(readResponseWithMarker(t), marker, tc.variant, 1)
			err := checkService(msg)
			require.Error(t, err)
			assert.ErrorIs(t, err, errHostile)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestCheckServiceAccepts checks that what the upstream encoder writes
// passes: every built-in type, scalars, arrays, matrices, extension objects
// and the responses the adapter receives.
func TestCheckServiceAccepts(t *testing.T) {
	nid := ua.NewStringNodeID(2, "Temperature")
	values := []any{
		true, int8(-1), uint8(1), int16(-2), uint16(2), int32(-3), uint32(3), int64(-4), uint64(4),
		float32(1.5), 2.5, "text", time.Now(), []byte{1, 2}, nid, ua.NewFourByteExpandedNodeID(0, 85),
		ua.StatusBadSensorFailure, &ua.QualifiedName{NamespaceIndex: 1, Name: "q"}, &ua.LocalizedText{Locale: "en", Text: "t"},
		ua.NewExtensionObject(&ua.EUInformation{DisplayName: &ua.LocalizedText{Text: "°C"}, Description: &ua.LocalizedText{}}),
		&ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(1.0)},
		ua.MustVariant(int32(7)), &ua.DiagnosticInfo{EncodingMask: 0x40, InnerDiagnosticInfo: &ua.DiagnosticInfo{}},
		[]float64{1, 2, 3}, []string{"a", "", "c"}, [][]int32{{1, 2, 3}, {4, 5, 6}}, []*ua.Variant{ua.MustVariant(1.0)},
		[]float64{}, nil,
	}
	res := &ua.ReadResponse{ResponseHeader: &ua.ResponseHeader{Timestamp: time.Now(), ServiceDiagnostics: &ua.DiagnosticInfo{}, AdditionalHeader: ua.NewExtensionObject(nil)}}
	for _, v := range values {
		variant, err := ua.NewVariant(v)
		require.NoError(t, err, "%T", v)
		res.Results = append(res.Results, &ua.DataValue{
			EncodingMask: ua.DataValueValue | ua.DataValueStatusCode | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp | ua.DataValueSourcePicoseconds | ua.DataValueServerPicoseconds,
			Value:        variant, SourceTimestamp: time.Now(), ServerTimestamp: time.Now(),
		})
	}
	msgs := map[string][]byte{"read": encodeService(t, id.ReadResponse_Encoding_DefaultBinary, res)}
	pub := &ua.PublishResponse{
		ResponseHeader: res.ResponseHeader, SubscriptionID: 1, AvailableSequenceNumbers: []uint32{1, 2},
		NotificationMessage: &ua.NotificationMessage{SequenceNumber: 2, PublishTime: time.Now(), NotificationData: []*ua.ExtensionObject{
			ua.NewExtensionObject(&ua.DataChangeNotification{MonitoredItems: []*ua.MonitoredItemNotification{{ClientHandle: 1, Value: res.Results[10]}}, DiagnosticInfos: []*ua.DiagnosticInfo{}}),
			ua.NewExtensionObject(&ua.StatusChangeNotification{Status: ua.StatusBadTimeout, DiagnosticInfo: &ua.DiagnosticInfo{}}),
		}},
		Results: []ua.StatusCode{ua.StatusOK}, DiagnosticInfos: []*ua.DiagnosticInfo{},
	}
	msgs["publish"] = encodeService(t, id.PublishResponse_Encoding_DefaultBinary, pub)
	eps := &ua.GetEndpointsResponse{ResponseHeader: res.ResponseHeader, Endpoints: []*ua.EndpointDescription{{
		EndpointURL: "opc.tcp://h:4840", Server: &ua.ApplicationDescription{ApplicationName: &ua.LocalizedText{Text: "s"}, DiscoveryURLs: []string{"opc.tcp://h:4840"}},
		ServerCertificate: []byte{1, 2, 3}, SecurityMode: ua.MessageSecurityModeNone, SecurityPolicyURI: ua.SecurityPolicyURINone,
		UserIdentityTokens: []*ua.UserTokenPolicy{{PolicyID: "anonymous", TokenType: ua.UserTokenTypeAnonymous}},
	}}}
	msgs["endpoints"] = encodeService(t, id.GetEndpointsResponse_Encoding_DefaultBinary, eps)
	for name, msg := range msgs {
		require.NoError(t, checkService(msg), name)
		_, _, err := ua.DecodeService(msg)
		require.NoError(t, err, "%s: the upstream decoder reads it too", name)
	}
}

// FuzzCheckService checks that the upstream decoder never panics on a
// message the check lets through.
func FuzzCheckService(f *testing.F) {
	f.Add(readResponseWithMarker(f))
	f.Add(bytes.Replace(readResponseWithMarker(f), marker, cat([]byte{0xC6}, le32(0), le32(1<<28)), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkService(b) != nil {
			return
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		_, _, _ = ua.DecodeService(b)
		runtime.ReadMemStats(&ms)
		if grew := ms.TotalAlloc - before; grew > uint64(64*len(b)+1<<20) {
			t.Fatalf("decoding %d accepted bytes allocated %d bytes", len(b), grew)
		}
	})
}

// tamperer is a hostile peer between the adapter and a real server: it
// replaces the first value of every Read response that holds a Double
// with the given Variant encoding (security policy None only).
type tamperer struct {
	ln      net.Listener
	target  string
	realURL string
	variant []byte
	wg      sync.WaitGroup
}

func newTamperer(t *testing.T, srv *opcuatest.Server, variant []byte) *tamperer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tp := &tamperer{ln: ln, target: srv.Addr(), realURL: srv.URL(), variant: variant}
	tp.wg.Add(1)
	go func() {
		defer tp.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tp.wg.Add(1)
			go tp.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); tp.wg.Wait() })
	return tp
}

func (tp *tamperer) URL() string { return "opc.tcp://" + tp.ln.Addr().String() }

func (tp *tamperer) serve(c net.Conn) {
	defer tp.wg.Done()
	defer c.Close()
	s, err := net.Dial("tcp", tp.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() {
		// The server answers GetEndpoints only for its own URL.
		buf := make([]byte, 1<<20)
		for {
			ch, err := readChunk(c, buf, len(buf))
			if err != nil {
				s.Close()
				return
			}
			switch string(ch[:3]) {
			case "HEL":
				ch = rewriteHello(ch, tp.realURL)
			case "MSG":
				ch = replaceURL(ch, tp.URL(), tp.realURL)
			}
			if _, err := s.Write(ch); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 1<<20)
	for {
		ch, err := readChunk(s, buf, len(buf))
		if err != nil {
			return
		}
		if string(ch[:4]) == "MSGF" {
			ch = tp.tamper(ch)
		}
		if _, err := c.Write(ch); err != nil {
			return
		}
	}
}

func (tp *tamperer) tamper(ch []byte) []byte {
	body := ch[24:]
	_, v, err := ua.DecodeService(body)
	res, ok := v.(*ua.ReadResponse)
	if err != nil || !ok || len(res.Results) == 0 || res.Results[0].Value == nil {
		return ch
	}
	if _, ok := res.Results[0].Value.Value().(float64); !ok {
		return ch
	}
	res.Results[0].Value = ua.MustVariant(int32(0x5A5A5A5A))
	enc, err := ua.Encode(res)
	if err != nil {
		return ch
	}
	var tid ua.ExpandedNodeID
	n, _ := tid.Decode(body)
	enc = bytes.Replace(enc, marker, tp.variant, 1)
	out := append(append(append([]byte{}, ch[:24]...), body[:n]...), enc...)
	binary.LittleEndian.PutUint32(out[4:8], uint32(len(out)))
	return out
}

// TestHostileVariant runs a Source against a server whose Read responses
// carry a 9-byte Variant declaring 2^28 array dimensions (1 GiB in the
// upstream decoder). The guard must refuse the message: the process does
// not allocate anything near that, and the samples are Bad with a reason
// naming the malformed message.
func TestHostileVariant(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: 20 * time.Millisecond})
	require.NoError(t, err)
	defer srv.Close()
	hostile := cat([]byte{0xC6}, le32(0), le32(1<<28))
	tp := newTamperer(t, srv, hostile)

	src, err := New(Config{
		Name: "plc", Endpoint: tp.URL(), Mode: Poll, Interval: 20 * time.Millisecond,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
		Nodes: []Node{{Name: "t", Node: opcuatest.NodeID(opcuatest.Temperature)}},
	})
	require.NoError(t, err)

	var mu sync.Mutex
	var got []bridge.Sample
	out := bridge.EmitterFunc(func(_ context.Context, b []bridge.Sample) error {
		mu.Lock()
		got = append(got, b...)
		mu.Unlock()
		return nil
	})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	assert.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range got {
			if s.Quality == bridge.Bad && strings.Contains(s.Reason, "malformed message") && strings.Contains(s.Reason, "dimensions") {
				n++
			}
		}
		return n >= 3 // three connections refused, three hostile messages
	}, 20*time.Second, 10*time.Millisecond, "Bad samples naming the malformed message")
	if t.Failed() {
		mu.Lock()
		for i, s := range got[:min(len(got), 10)] {
			t.Logf("%d: %+v", i, s)
		}
		mu.Unlock()
	}
	cancel()
	require.NoError(t, <-done)

	runtime.ReadMemStats(&ms)
	grew := ms.TotalAlloc - before
	t.Logf("allocated %d MiB in all", grew>>20)
	assert.Less(t, grew, uint64(256<<20), "the hostile variant must not be decoded")
	mu.Lock()
	defer mu.Unlock()
	for _, s := range got {
		assert.NotEqual(t, bridge.Good, s.Quality, "no value can come through the tampering server")
	}
}
