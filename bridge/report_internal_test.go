package bridge

import (
	"strconv"
	"testing"
)

// The filter allocates only when it meets a new point: in steady state a
// sample costs no allocation, suppressed or reported.
func TestReportFilterSteadyStateDoesNotAllocate(t *testing.T) {
	f := newReportFilter(Report{Deadband: 0.5, Heartbeat: MinHeartbeat}, map[string]Report{"p1": {OnChange: true}})
	batch := make([]Sample, 100)
	for i := range batch {
		batch[i] = Sample{Source: "meter1", Point: "p" + strconv.Itoa(i), Value: Float(230), Reason: "r"}
	}
	cycle := 0
	run := func() {
		cycle++
		now := f.now()
		for i := range batch {
			batch[i].Value = Float(230 + float64((cycle+i)%3)) // reported and suppressed, by turns
			if i%10 == 0 {
				batch[i].Value = String(strconv.Itoa(cycle % 2)) // strings as well (small numbers do not allocate)
			}
			f.pass(&batch[i], now)
		}
	}
	run()
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Fatalf("%v allocations per 100 samples, want none from the filter", allocs)
	}
}
