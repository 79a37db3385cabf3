package opcuatest_test

import (
	"fmt"

	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// A test starts a server, points the code under test at srv.URL() and
// injects faults with DropConnections, Blackhole, Stop, Start and Restart.
func ExampleNew() {
	srv, err := opcuatest.New(opcuatest.Options{Interval: -1}) // values move only on Tick
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	srv.Tick()
	fmt.Println(opcuatest.NodeID(opcuatest.Counter), srv.Value(opcuatest.Counter))
	if err := srv.Set(opcuatest.Setpoint, 21.5); err != nil {
		fmt.Println(err)
	}
	fmt.Println(opcuatest.NodeID(opcuatest.Setpoint), srv.Value(opcuatest.Setpoint))
	fmt.Println(srv.Set(opcuatest.Setpoint, "warm"))
	// Output:
	// ns=1;s=Counter 1
	// ns=1;s=Setpoint 21.5
	// opcuatest: Setpoint: value of type String, want Double
}
