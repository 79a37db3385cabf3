package sparkplug

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine, the MQTT clients' included,
// outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
