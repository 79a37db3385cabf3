package mqtt

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine, the clients' included, outlives
// the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
