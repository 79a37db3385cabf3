package opcua

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// browseAll browses each description, following continuation points.
func browseAll(ctx context.Context, c *opcua.Client, descs []*ua.BrowseDescription) ([][]*ua.ReferenceDescription, error) {
	res, err := c.Browse(ctx, &ua.BrowseRequest{NodesToBrowse: descs, View: &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)}})
	if err != nil {
		return nil, err
	}
	if len(res.Results) != len(descs) {
		return nil, fmt.Errorf("browse of %d nodes returned %d results", len(descs), len(res.Results))
	}
	out := make([][]*ua.ReferenceDescription, len(descs))
	for i, r := range res.Results {
		if quality(r.StatusCode) == 2 { // Bad: no references for this node
			continue
		}
		out[i] = r.References
		cp := r.ContinuationPoint
		for len(cp) > 0 {
			nr, err := c.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{cp}})
			if err != nil {
				return nil, fmt.Errorf("browse next: %w", err)
			}
			if len(nr.Results) != 1 {
				break
			}
			out[i] = append(out[i], nr.Results[0].References...)
			cp = nr.Results[0].ContinuationPoint
		}
	}
	return out, nil
}

// engineeringUnits returns, for each node, the DisplayName of its
// EngineeringUnits property (Part 8, 5.6.3), or "" when it has none.
func engineeringUnits(ctx context.Context, c *opcua.Client, nodes []*ua.NodeID, chunk int, read func([]*ua.ReadValueID) ([]*ua.DataValue, error)) ([]string, error) {
	units := make([]string, len(nodes))
	var props []*ua.ReadValueID
	var owner []int
	for start := 0; start < len(nodes); start += chunk {
		end := min(start+chunk, len(nodes))
		descs := make([]*ua.BrowseDescription, 0, end-start)
		for _, n := range nodes[start:end] {
			descs = append(descs, &ua.BrowseDescription{
				NodeID:          n,
				BrowseDirection: ua.BrowseDirectionForward,
				ReferenceTypeID: ua.NewNumericNodeID(0, id.HasProperty),
				IncludeSubtypes: true,
				NodeClassMask:   uint32(ua.NodeClassVariable),
				ResultMask:      uint32(ua.BrowseResultMaskAll),
			})
		}
		refs, err := browseAll(ctx, c, descs)
		if err != nil {
			return nil, err
		}
		for k, rs := range refs {
			for _, r := range rs {
				if r.BrowseName != nil && r.BrowseName.Name == "EngineeringUnits" && r.NodeID != nil {
					props = append(props, &ua.ReadValueID{NodeID: r.NodeID.NodeID, AttributeID: ua.AttributeIDValue})
					owner = append(owner, start+k)
					break
				}
			}
		}
	}
	if len(props) == 0 {
		return units, nil
	}
	vals, err := read(props)
	if err != nil {
		return nil, err
	}
	for k, dv := range vals {
		if dv == nil || dv.Value == nil {
			continue
		}
		eo, ok := dv.Value.Value().(*ua.ExtensionObject)
		if !ok || eo == nil {
			continue
		}
		if eu, ok := eo.Value.(*ua.EUInformation); ok && eu.DisplayName != nil {
			units[owner[k]] = eu.DisplayName.Text
		}
	}
	return units, nil
}

// hierarchical reference types followed by Browse.
var hierarchical = map[uint32]bool{id.Organizes: true, id.HasComponent: true, id.HasOrderedComponent: true}

// Browse connects with cfg's endpoint, security and authentication, lists
// the variables under root (following Organizes and HasComponent
// references, at most maxDepth levels deep; 0 means 1) and returns them as a
// node list ready for Config.Nodes: names are the browse names joined with
// "." from below root (made unique with a "_2" suffix where needed), ids
// are written with nsu=<namespace URI> so they survive a change of
// namespace index, and units come from EngineeringUnits.
//
// cfg.Nodes is ignored.
func Browse(ctx context.Context, cfg Config, root string, maxDepth int) ([]Node, error) {
	cfg.Nodes = []Node{{Name: "root", Node: root}}
	if cfg.Name == "" {
		cfg.Name = "browse"
	}
	cfg.Mode, cfg.Buffer = Poll, 0
	src, err := New(cfg)
	if err != nil {
		return nil, err
	}
	defer src.closeGuard()
	sess, err := src.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("opcua: browse: %w", err)
	}
	defer src.closeSession(sess)
	if sess.nodes[0].id == nil {
		return nil, fmt.Errorf("opcua: browse: %s: %w", root, sess.nodes[0].err)
	}
	if maxDepth <= 0 {
		maxDepth = 1
	}
	type item struct {
		id   *ua.NodeID
		path string
	}
	level := []item{{id: sess.nodes[0].id}}
	seen := map[string]bool{sess.nodes[0].id.String(): true}
	var vars []item
	for depth := 0; depth < maxDepth && len(level) > 0; depth++ {
		var next []item
		parents := make([]*ua.NodeID, len(level))
		for i, it := range level {
			parents[i] = it.id
		}
		err := browseChildren(ctx, sess.c, parents, seen, func(k int, r *ua.ReferenceDescription) {
			name := ""
			if r.BrowseName != nil {
				name = r.BrowseName.Name
			}
			if level[k].path != "" {
				name = level[k].path + "." + name
			}
			it := item{id: r.NodeID.NodeID, path: name}
			if r.NodeClass == ua.NodeClassVariable {
				vars = append(vars, it)
			}
			next = append(next, it)
		})
		if err != nil {
			return nil, err
		}
		level = next
	}
	ids := make([]*ua.NodeID, len(vars))
	for i, v := range vars {
		ids[i] = v.id
	}
	units, err := engineeringUnits(ctx, sess.c, ids, 200, func(req []*ua.ReadValueID) ([]*ua.DataValue, error) {
		return src.readChunked(ctx, sess, req)
	})
	if err != nil {
		return nil, fmt.Errorf("opcua: browse: engineering units: %w", err)
	}
	ns := sess.c.Namespaces()
	used := map[string]int{}
	nodes := make([]Node, 0, len(vars))
	for i, v := range vars {
		nodes = append(nodes, Node{Name: uniqueName(used, v.path), Node: withURI(v.id, ns), Unit: units[i]})
	}
	return nodes, nil
}

// browseChildren browses the forward hierarchical references to objects
// and variables of parents, 200 at a time, and calls each with the index
// of the parent and each reference to a node not in seen, which it adds.
func browseChildren(ctx context.Context, c *opcua.Client, parents []*ua.NodeID, seen map[string]bool, each func(k int, r *ua.ReferenceDescription)) error {
	for start := 0; start < len(parents); start += 200 {
		part := parents[start:min(start+200, len(parents))]
		descs := make([]*ua.BrowseDescription, len(part))
		for k, id := range part {
			descs[k] = &ua.BrowseDescription{
				NodeID:          id,
				BrowseDirection: ua.BrowseDirectionForward,
				ReferenceTypeID: ua.NewTwoByteNodeID(0), // all; filtered below
				IncludeSubtypes: true,
				NodeClassMask:   uint32(ua.NodeClassObject | ua.NodeClassVariable),
				ResultMask:      uint32(ua.BrowseResultMaskAll),
			}
		}
		refs, err := browseAll(ctx, c, descs)
		if err != nil {
			return fmt.Errorf("opcua: browse: %w", err)
		}
		for k, rs := range refs {
			for _, r := range rs {
				if !r.IsForward || r.NodeID == nil || r.ReferenceTypeID == nil || r.ReferenceTypeID.Namespace() != 0 || !hierarchical[r.ReferenceTypeID.IntID()] {
					continue
				}
				id := r.NodeID.NodeID.String()
				if seen[id] {
					continue
				}
				seen[id] = true
				each(start+k, r)
			}
		}
	}
	return nil
}

// uniqueName returns name ("node" when empty), or name_N when used has
// seen it N-1 times before; it counts name in used.
func uniqueName(used map[string]int, name string) string {
	if name == "" {
		name = "node"
	}
	used[name]++
	if n := used[name]; n > 1 {
		name += "_" + strconv.Itoa(n)
	}
	return name
}

// withURI writes id with its namespace URI instead of its index.
func withURI(nid *ua.NodeID, ns []string) string {
	s := nid.String()
	i := int(nid.Namespace())
	if i == 0 || i >= len(ns) {
		return s
	}
	_, rest, ok := strings.Cut(s, ";")
	if !ok {
		return s
	}
	return "nsu=" + ns[i] + ";" + rest
}
