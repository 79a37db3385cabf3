package limits_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/limits"
)

func TestDurations(t *testing.T) {
	ack, conn, keep := time.Duration(0), time.Hour, 5*time.Second
	errs := limits.Durations(limits.AckTimeout(&ack), limits.ConnectTimeout(&conn, 5*time.Second),
		limits.Duration{Key: "keep_alive", P: &keep, Def: time.Second, Min: time.Second, Max: time.Minute})
	assert.Equal(t, 10*time.Second, ack, "default filled in")
	assert.Equal(t, 5*time.Second, keep, "in range: kept")
	assert.Equal(t, []error{&bridge.FieldError{Path: "connect_timeout", Msg: "1h0m0s is outside 100ms to 10m0s"}}, errs)
}

func TestInt(t *testing.T) {
	n := 0
	assert.NoError(t, limits.Int("max_in_flight", &n, 1024, 1, 65535))
	assert.Equal(t, 1024, n)
	n = 70000
	assert.Equal(t, &bridge.FieldError{Path: "max_in_flight", Msg: "70000 is outside 1 to 65535"}, limits.Int("max_in_flight", &n, 1024, 1, 65535))
}
