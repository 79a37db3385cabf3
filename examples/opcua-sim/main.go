// Command opcua-sim serves a simulated OPC UA server for third-party clients
// (UaExpert, node-opcua, Prosys, the m2mbridge gateway): the variables of
// package opcuatest — a counter, a ramp, a sine wave, a toggling bool, a
// string, a DateTime, a Bad-status variable, an Uncertain one, a temperature
// with EngineeringUnits, an array, two writable setpoints — plus any number
// of extra Double variables, all changing every interval.
//
// Usage:
//
//	opcua-sim -listen 127.0.0.1:4840 -interval 100ms -extra 1000 -security
//
// It prints the endpoint URL and the node ids, then serves until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/m2mbridge/m2mbridge/opcua"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:4840", "address to listen on (host:port; port 0 picks a free one)")
	interval := flag.Duration("interval", 100*time.Millisecond, "how often the variables change (negative: never)")
	extra := flag.Int("extra", 0, "number of extra Double variables x00000, x00001, ... changing every interval")
	maxRead := flag.Uint("max-nodes-per-read", opcuatest.DefaultMaxNodesPerRead, "MaxNodesPerRead operation limit announced and enforced")
	security := flag.Bool("security", false, "also offer Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss endpoints (Sign, SignAndEncrypt) and user name authentication")
	noEndpoints := flag.Duration("no-endpoints-for", 0, "answer GetEndpoints with an empty list for this long after starting, as a server that is booting may")
	flag.Parse()
	if err := run(*listen, *interval, *extra, uint32(*maxRead), *security, *noEndpoints); err != nil {
		fmt.Fprintln(os.Stderr, "opcua-sim:", err)
		os.Exit(1)
	}
}

func run(listen string, interval time.Duration, extra int, maxRead uint32, security bool, noEndpoints time.Duration) error {
	if interval == 0 {
		return fmt.Errorf("-interval must not be 0")
	}
	if noEndpoints < 0 {
		return fmt.Errorf("-no-endpoints-for must not be negative")
	}
	srv, err := opcuatest.New(opcuatest.Options{Addr: listen, Interval: interval, Extra: extra, MaxNodesPerRead: maxRead, Security: security})
	if err != nil {
		return err
	}
	if noEndpoints > 0 {
		srv.HideEndpoints(true)
		time.AfterFunc(noEndpoints, func() { srv.HideEndpoints(false) })
		fmt.Printf("no endpoints offered for %s\n", noEndpoints)
	}
	fmt.Printf("OPC UA server on %s (namespace %s)\n", srv.URL(), opcuatest.NamespaceURI)
	if security {
		fmt.Printf("server certificate SHA-256: %s\n", opcua.Thumbprint(srv.Certificate()))
	}
	names := srv.Names()
	for i, n := range names {
		if i == 20 && len(names) > 24 {
			fmt.Printf("  ... and %d more, up to %s\n", len(names)-i-1, opcuatest.NodeID(names[len(names)-1]))
			break
		}
		fmt.Printf("  %s\n", opcuatest.NodeID(n))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Println("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
