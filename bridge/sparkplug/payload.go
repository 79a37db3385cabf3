package sparkplug

import (
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
)

// Node metric names of the NBIRTH (spec 4.2.1.1.2 and 6.4.19 name only bdSeq
// and Node Control/Rebirth; the Node Info folder follows the Node Control
// naming of Eclipse Tahu's examples).
const (
	MetricBdSeq      = "bdSeq"
	MetricRebirth    = "Node Control/Rebirth"
	MetricVersion    = "Node Info/Version"
	MetricSpoolDepth = "Node Info/Spool Depth"
)

// PropertyEngUnit is the key of the metric property that holds a metric's
// engineering unit in a DBIRTH, as Ignition and Cirrus Link's MQTT Engine
// name it ("engUnit"; the spec leaves property keys but Quality open,
// 6.4.9).
const PropertyEngUnit = "engUnit"

// QualityProperty is the key of the metric property that holds a sample's
// quality: 192 good, 64 uncertain, 0 bad (see the package doc).
const QualityProperty = qualityKey

func ms(t time.Time) uint64 {
	if n := t.UnixMilli(); n > 0 {
		return uint64(n)
	}
	return 0
}

// deathPayload is the NDEATH payload: the timestamp and the bdSeq metric,
// an Int64 (spec 4.2.1.3, 6.4.25); no seq (6.4.5).
func deathPayload(bdSeq uint64, now time.Time) []byte {
	p := &sppb.Payload{
		Timestamp: proto.Uint64(ms(now)),
		Metrics: []*sppb.Payload_Metric{{
			Name:      proto.String(MetricBdSeq),
			Timestamp: proto.Uint64(ms(now)),
			Datatype:  proto.Uint32(uint32(sppb.DataType_Int64)),
			Value:     &sppb.Payload_Metric_LongValue{LongValue: bdSeq},
		}},
	}
	b, _ := proto.Marshal(p) // cannot fail: every field is set and valid
	return b
}

var versionOnce = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "m2mbridge (unknown version)"
	}
	v := "m2mbridge " + bi.Main.Version
	for _, d := range bi.Deps {
		if d.Path == "github.com/m2mbridge/m2mbridge" {
			v = "m2mbridge " + d.Version
		}
	}
	return v + " " + bi.GoVersion
})

// nodeBirth is the NBIRTH payload: seq 0, bdSeq (the Will's), Node
// Control/Rebirth false without an alias (spec 4.2.1.1.2,
// 6.4.19), the version and, when known, the
// depth of the queue (or spool) of samples waiting for this sink.
func nodeBirth(bdSeq uint64, now time.Time, spoolDepth int64, haveDepth bool) *sppb.Payload {
	t := proto.Uint64(ms(now))
	p := &sppb.Payload{Timestamp: t, Seq: proto.Uint64(0)}
	p.Metrics = append(p.Metrics,
		&sppb.Payload_Metric{Name: proto.String(MetricBdSeq), Timestamp: t, Datatype: proto.Uint32(uint32(sppb.DataType_Int64)), Value: &sppb.Payload_Metric_LongValue{LongValue: bdSeq}},
		&sppb.Payload_Metric{Name: proto.String(MetricRebirth), Timestamp: t, Datatype: proto.Uint32(uint32(sppb.DataType_Boolean)), Value: &sppb.Payload_Metric_BooleanValue{BooleanValue: false}},
		&sppb.Payload_Metric{Name: proto.String(MetricVersion), Timestamp: t, Datatype: proto.Uint32(uint32(sppb.DataType_String)), Value: &sppb.Payload_Metric_StringValue{StringValue: versionOnce()}},
	)
	if haveDepth {
		p.Metrics = append(p.Metrics, &sppb.Payload_Metric{Name: proto.String(MetricSpoolDepth), Timestamp: t,
			Datatype: proto.Uint32(uint32(sppb.DataType_UInt64)), Value: &sppb.Payload_Metric_LongValue{LongValue: uint64(max(spoolDepth, 0))}})
	}
	return p
}

// birthMetric is a metric of a DBIRTH: name, alias, datatype, the
// engineering unit as a property beside Quality, and the last value known
// (is_null with Quality bad when none is, spec 6.4.6).
func birthMetric(m *metric, aliases bool) *sppb.Payload_Metric {
	var pm *sppb.Payload_Metric
	if m.hasLast {
		var err error
		pm, err = sampleMetric(m.last, m.dt)
		if err != nil {
			pm = nil
		}
	}
	if pm == nil {
		pm = &sppb.Payload_Metric{Datatype: proto.Uint32(uint32(m.dt)), IsNull: proto.Bool(true),
			Properties: &sppb.Payload_PropertySet{Keys: []string{qualityKey}, Values: []*sppb.Payload_PropertyValue{qualityProperty(bridge.Bad)}}}
	}
	pm.Name = proto.String(m.name)
	if aliases {
		pm.Alias = proto.Uint64(m.alias)
	}
	unit := m.unit
	if m.hasLast && m.last.Unit != "" {
		unit = m.last.Unit
	}
	if unit != "" {
		// A set of its own: sampleMetric's are shared.
		ps := pm.Properties
		pm.Properties = &sppb.Payload_PropertySet{
			Keys: append(append(make([]string, 0, len(ps.Keys)+1), ps.Keys...), PropertyEngUnit),
			Values: append(append(make([]*sppb.Payload_PropertyValue, 0, len(ps.Values)+1), ps.Values...), &sppb.Payload_PropertyValue{
				Type: proto.Uint32(uint32(sppb.DataType_String)), Value: &sppb.Payload_PropertyValue_StringValue{StringValue: unit}}),
		}
	}
	return pm
}
