package sparkplug

import "testing"

func TestSeqWraps(t *testing.T) {
	var c seqCounter
	if got := c.birth(); got != 0 {
		t.Fatalf("NBIRTH seq = %d, want 0", got)
	}
	for want := uint64(1); want <= 255; want++ {
		if got := c.take(); got != want {
			t.Fatalf("seq = %d, want %d", got, want)
		}
	}
	if got := c.take(); got != 0 {
		t.Fatalf("seq after 255 = %d, want 0", got)
	}
	if got := c.take(); got != 1 {
		t.Fatalf("seq = %d, want 1", got)
	}
	// A rebirth starts again at 0, then 1.
	if got := c.birth(); got != 0 {
		t.Fatalf("rebirth seq = %d, want 0", got)
	}
	if got := c.take(); got != 1 {
		t.Fatalf("seq after rebirth = %d, want 1", got)
	}
}
