package modbus_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	upstream "github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// benchProfile is a 100-point device spread over three register blocks:
// 40 uint16 holding registers at 0, 30 float32 input registers at 100 and 30
// scaled int32 holding registers at 1000. It takes three requests.
func benchProfile() *modbus.Profile {
	p := &modbus.Profile{Name: "bench"}
	for i := range 40 {
		p.Points = append(p.Points, modbus.Point{Name: "h" + strconv.Itoa(i), Table: modbus.Holding,
			Address: uint16(i), Type: modbus.Uint16})
	}
	for i := range 30 {
		p.Points = append(p.Points, modbus.Point{Name: "f" + strconv.Itoa(i), Table: modbus.Input,
			Address: uint16(100 + 2*i), Type: modbus.Float32, Unit: "V"})
	}
	for i := range 30 {
		p.Points = append(p.Points, modbus.Point{Name: "e" + strconv.Itoa(i), Table: modbus.Holding,
			Address: uint16(1000 + 2*i), Type: modbus.Int32, Scale: 0.1, Unit: "kWh"})
	}
	return p
}

// discard is an Emitter that drops the batch, as a Bridge would after
// copying it into its queues.
type discard struct{ n int }

func (d *discard) Emit(_ context.Context, batch []bridge.Sample) error {
	d.n += len(batch)
	return nil
}

// BenchmarkCycle compares the adapter's full poll cycle (plan, three reads,
// decode 100 points, one batch of samples handed to the bridge) with the
// bare upstream client issuing the same three requests and decoding
// nothing, both over loopback TCP from the simulator. Targets (issue 3): at
// most 1.5x the bare client's time per cycle and at most 1 allocation per
// sample. Measured on the shared 2-core development machine on 2026-12-01:
// adapter 46-50 us (0.09 allocs/sample), upstream 38-45 us; the
// simulator's side of the loopback round trips dominates both. The product
// sub-benchmark (issue 11) is the whole product path, below.
func BenchmarkCycle(b *testing.B) {
	p := benchProfile()
	s, err := modbustest.NewServer(p, modbustest.WithTick(time.Hour), modbustest.WithLogSize(16))
	require.NoError(b, err)
	defer s.Close()
	ctx := context.Background()

	b.Run("adapter", func(b *testing.B) {
		d, err := modbus.NewDevice(modbus.DeviceConfig{Name: "bench", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p})
		require.NoError(b, err)
		defer d.Close()
		require.Len(b, d.Plan().Requests, 3)
		out := &discard{}
		require.NoError(b, d.PollOnce(ctx, out)) // connect, warm up
		require.Equal(b, len(p.Points), out.n)
		reqs := s.RequestCount()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		cpu0 := cpuTime()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := d.PollOnce(ctx, out); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if cpu := cpuTime() - cpu0; cpu > 0 {
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/cycle")
		}
		runtime.ReadMemStats(&ms1)
		samples := float64(b.N * len(p.Points))
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
		b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
		b.ReportMetric(float64(s.RequestCount()-reqs)/float64(b.N), "requests/cycle")
		b.ReportMetric(float64(d.Plan().Registers())/1, "registers/cycle")
		b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/samples, "allocs/sample")
	})

	// product is the whole product path: the Device polled back to back
	// into a running Bridge whose JSON-lines sink writes to io.Discard. Its
	// cost is CPU time (this process: the simulator, the poller, the
	// bridge's writer goroutine), reported against the bare upstream
	// client's ("cpu-ratio"; target ≤ 1.5, issue 11). The two run in turns
	// of productTurn cycles, each turn's CPU time measured, so that both see
	// the same machine: on a shared virtual machine the cost of a loopback
	// round trip drifts by tens of percent within a minute.
	b.Run("product", func(b *testing.B) {
		d, err := modbus.NewDevice(modbus.DeviceConfig{Name: "bench", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p})
		require.NoError(b, err)
		defer d.Close()
		br := bridge.New(bridge.Options{Logger: slog.New(slog.DiscardHandler)})
		sink := &notifySink{Sink: bridge.NewJSONLines(io.Discard), reached: make(chan struct{}, 1)}
		require.NoError(b, br.AddSink("json", sink, bridge.SinkOptions{}))
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- br.Run(ctx) }()
		defer func() { cancel(); <-done }()
		require.NoError(b, d.PollOnce(ctx, br)) // connect, warm up
		sink.wait(uint64(len(p.Points)))

		mc, err := upstream.NewClient(&upstream.ClientConfiguration{URL: s.URL(), Logger: discardLogger()})
		require.NoError(b, err)
		require.NoError(b, mc.Open())
		defer mc.Close()
		var ms0, ms1 runtime.MemStats
		var cpu, base time.Duration
		var mallocs uint64
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; {
			turn := min(productTurn, b.N-n)
			b.StopTimer()
			base += upstreamCPU(b, mc, turn)
			b.StartTimer()
			runtime.ReadMemStats(&ms0)
			cpu0 := cpuTime()
			for range turn {
				if err := d.PollOnce(ctx, br); err != nil {
					b.Fatal(err)
				}
			}
			// Wait for the writer to have written the turn, so its CPU is
			// in.
			n += turn
			sink.wait(uint64(n+1) * uint64(len(p.Points)))
			cpu += cpuTime() - cpu0
			runtime.ReadMemStats(&ms1)
			mallocs += ms1.Mallocs - ms0.Mallocs
		}
		b.StopTimer()
		samples := float64(b.N * len(p.Points))
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
		b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
		b.ReportMetric(float64(mallocs)/samples, "allocs/sample")
		if cpu > 0 && base > 0 {
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/cycle")
			b.ReportMetric(float64(base.Microseconds())/float64(b.N), "upstream-cpu-us/cycle")
			b.ReportMetric(float64(cpu)/float64(base), "cpu-ratio")
		}
	})

	b.Run("upstream", func(b *testing.B) {
		mc, err := upstream.NewClient(&upstream.ClientConfiguration{URL: s.URL(), Logger: discardLogger()})
		require.NoError(b, err)
		require.NoError(b, mc.Open())
		defer mc.Close()
		read := func() error {
			if _, err := mc.ReadRegisters(0, 40, upstream.HOLDING_REGISTER); err != nil {
				return err
			}
			if _, err := mc.ReadRegisters(100, 60, upstream.INPUT_REGISTER); err != nil {
				return err
			}
			_, err := mc.ReadRegisters(1000, 60, upstream.HOLDING_REGISTER)
			return err
		}
		require.NoError(b, read())
		reqs := s.RequestCount()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := read(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
		b.ReportMetric(float64(s.RequestCount()-reqs)/float64(b.N), "requests/cycle")
		b.ReportMetric(160, "registers/cycle")
		b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N*len(p.Points)), "allocs/sample")
	})
}

var fleetDuration = flag.Duration("modbus.fleet", 10*time.Second,
	"how long BenchmarkFleet polls its 1,000 devices (the issue's figure is for 60s)")

// TestHelperSimProcess is not a test: BenchmarkFleet runs the test binary
// with M2MB_SIM_PROCESS=1 to serve the simulator from another process, so
// that the benchmark's CPU and memory figures are the adapter's alone.
func TestHelperSimProcess(t *testing.T) {
	if os.Getenv("M2MB_SIM_PROCESS") != "1" {
		t.Skip("helper process for BenchmarkFleet")
	}
	var p *modbus.Profile
	if name := os.Getenv("M2MB_SIM_PROFILE"); name != "" {
		var err error
		p, err = modbus.BuiltinProfile(name)
		require.NoError(t, err)
	} else {
		p = benchProfile()
	}
	opts := []modbustest.Option{modbustest.WithLogSize(1)}
	if os.Getenv("M2MB_SIM_GAPS") == "refuse" {
		opts = append(opts, modbustest.WithRefusedGaps())
	}
	s, err := modbustest.NewServer(p, opts...)
	require.NoError(t, err)
	fmt.Println("SIM", s.URL())
	// Serve until stdin closes (the benchmark ends).
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	s.Close()
}

// BenchmarkFleet polls 1,000 simulated devices, each on its own
// connection, every second for -modbus.fleet (default 10s; the issue's
// target is stated for 60s), and reports the adapter process's CPU use as a
// share of one core, its resident memory, and the requests and samples per
// second. The simulator runs in a child process. Three device kinds:
//
//   - bench100: the 100-point, three-block device of BenchmarkCycle (3
//     requests per cycle);
//   - sdm630: the Eastron SDM630 profile served as the meter behaves,
//     answering reads across the gaps of its map (limits.fills_gaps; see
//     the profile for the sources), so the planner's 4 requests read its
//     42 points;
//   - sdm630-refusing: the same map on a device that refuses reads across
//     its gaps (Illegal Data Address), so that after hole learning each
//     meter takes 11 requests per cycle.
//
// Targets (issue 3): under 15% of one core and under 150 MB resident.
// Measured on the shared 2-core development machine, 60 s windows, each
// kind in its own process (go test -c, then -test.bench
// 'BenchmarkFleet/sdm630$' -test.benchtime 1x -modbus.fleet 60s): bench100
// 7.9-11% of a core, 95-108 MB; sdm630 8.6-12.2%, 71-88 MB;
// sdm630-refusing 25-26%, 78-105 MB. About half the CPU is the read and
// write system calls of each request, so it follows the request count.
func BenchmarkFleet(b *testing.B) {
	if testing.Short() {
		b.Skip("long benchmark")
	}
	b.Run("bench100", func(b *testing.B) { benchFleet(b, "", "") })
	b.Run("sdm630", func(b *testing.B) { benchFleet(b, "eastron-sdm630", "") })
	b.Run("sdm630-refusing", func(b *testing.B) { benchFleet(b, "eastron-sdm630", "refuse") })
}

func benchFleet(b *testing.B, profile, gaps string) {
	const devices = 1000
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSimProcess$")
	cmd.Env = append(os.Environ(), "M2MB_SIM_PROCESS=1", "M2MB_SIM_PROFILE="+profile, "M2MB_SIM_GAPS="+gaps)
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	var url string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "SIM "); ok {
			url = u
			break
		}
	}
	require.NotEmpty(b, url, "simulator process did not start")
	go func() {
		for sc.Scan() {
		}
	}()

	p := benchProfile()
	if profile != "" {
		var err error
		p, err = modbus.BuiltinProfile(profile)
		require.NoError(b, err)
	}
	var devs []*modbus.Device
	for i := range devices {
		d, err := modbus.NewDevice(modbus.DeviceConfig{Name: "meter" + strconv.Itoa(i),
			Conn: modbus.ClientConfig{URL: url, Timeout: 5 * time.Second}, Profile: p, Interval: time.Second})
		require.NoError(b, err)
		devs = append(devs, d)
	}
	var mu sync.Mutex
	var samples, bad int
	out := bridge.EmitterFunc(func(_ context.Context, batch []bridge.Sample) error {
		mu.Lock()
		samples += len(batch)
		for i := range batch {
			if batch[i].Quality != bridge.Good {
				bad++
			}
		}
		mu.Unlock()
		return nil
	})
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = d.Run(ctx, out)
			}()
		}
		// Let the connections and hole learning settle (every device has
		// run two cycles), then measure.
		settled := func() bool {
			for _, d := range devs {
				if d.Stats().Cycles < 2 {
					return false
				}
			}
			return true
		}
		deadline := time.Now().Add(30 * time.Second)
		for !settled() {
			if time.Now().After(deadline) {
				b.Fatal("the devices did not all poll twice within 30s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		requests := func() (n uint64) {
			for _, d := range devs {
				n += d.Stats().Requests
			}
			return n
		}
		mu.Lock()
		samples0 := samples
		mu.Unlock()
		reqs0 := requests()
		cpu0 := cpuTime()
		start := time.Now()
		time.Sleep(*fleetDuration) // the measurement window, not a wait for a condition
		cpu := cpuTime() - cpu0
		elapsed := time.Since(start)
		mu.Lock()
		n := samples - samples0
		mu.Unlock()
		b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "%cpu")
		b.ReportMetric(float64(rssBytes())/(1<<20), "MB-rss")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MB-heap")
		b.ReportMetric(float64(ms.StackInuse)/(1<<20), "MB-stacks")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "samples/s")
		b.ReportMetric(float64(requests()-reqs0)/elapsed.Seconds(), "requests/s")
		cancel()
		wg.Wait()
	}
	mu.Lock()
	b.ReportMetric(float64(bad), "bad-samples")
	mu.Unlock()
	for _, d := range devs {
		d.Close()
	}
}

// upstreamCPU returns the CPU time the bare upstream client mc takes for n
// cycles of BenchmarkCycle's three requests.
func upstreamCPU(b *testing.B, mc *upstream.ModbusClient, n int) time.Duration {
	read := func() {
		_, err1 := mc.ReadRegisters(0, 40, upstream.HOLDING_REGISTER)
		_, err2 := mc.ReadRegisters(100, 60, upstream.INPUT_REGISTER)
		_, err3 := mc.ReadRegisters(1000, 60, upstream.HOLDING_REGISTER)
		require.NoError(b, errors.Join(err1, err2, err3))
	}
	read()
	cpu0 := cpuTime()
	for range n {
		read()
	}
	return cpuTime() - cpu0
}

// productTurn is how many cycles BenchmarkCycle/product runs at a time,
// in turn with as many of the bare upstream client: 100 ms or so, well
// above the granularity of the CPU time the kernel reports.
const productTurn = 2000

// notifySink is a sink that counts what it delivered, so that a benchmark
// can wait for its writer without spinning (which would count as CPU).
type notifySink struct {
	bridge.Sink
	delivered atomic.Uint64
	mu        sync.Mutex
	want      uint64
	reached   chan struct{}
}

func (s *notifySink) Write(ctx context.Context, batch []bridge.Sample) error {
	if err := s.Sink.Write(ctx, batch); err != nil {
		return err
	}
	n := s.delivered.Add(uint64(len(batch)))
	s.mu.Lock()
	if s.want != 0 && n >= s.want {
		s.want = 0
		select {
		case s.reached <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	return nil
}

// wait returns once n samples were delivered.
func (s *notifySink) wait(n uint64) {
	s.mu.Lock()
	if s.delivered.Load() >= n {
		s.mu.Unlock()
		return
	}
	s.want = n
	s.mu.Unlock()
	<-s.reached
}
