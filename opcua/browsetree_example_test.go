package opcua_test

import (
	"context"
	"fmt"
	"time"

	"github.com/m2mbridge/m2mbridge/opcua"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// ExampleBrowseTree lists the variables under a folder with their data
// types, units and access, and turns the tree into a node list.
func ExampleBrowseTree() {
	srv, err := opcuatest.New(opcuatest.Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	tree, err := opcua.BrowseTree(ctx, opcua.Config{Endpoint: srv.URL()}, opcuatest.FolderNodeID, 1)
	if err != nil {
		panic(err)
	}
	for _, v := range opcua.Variables(tree)[:3] {
		fmt.Println(v.BrowseName, v.DataType, v.Access())
	}
	for _, v := range opcua.Variables(tree) {
		if n := v.Node(); n.Unit != "" {
			fmt.Println(n.Name, n.Node, n.Unit)
		}
	}
	// Output:
	// Counter UInt32 r
	// Ramp Double r
	// Sine Double r
	// Temperature nsu=urn:m2mbridge:opcuatest;s=Temperature °C
}
