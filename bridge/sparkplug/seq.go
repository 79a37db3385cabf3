package sparkplug

// seqCounter numbers the messages of one edge node session: NBIRTH carries
// 0, and every later NBIRTH, DBIRTH, NDATA, DDATA and DDEATH the next value,
// 255 followed by 0 (spec 6.4.5, Payload "seq"; 4.2.1.1.2). NDEATH carries
// none. The zero value is ready for an NBIRTH. It is not safe for concurrent
// use: the session that publishes owns it.
type seqCounter struct {
	next uint8 // uint8 arithmetic does the 255 → 0 wrap
}

// birth resets the counter for an NBIRTH and returns its seq, 0. A rebirth
// (NCMD Node Control/Rebirth) starts again from 0 as well.
func (c *seqCounter) birth() uint64 {
	c.next = 1
	return 0
}

// take returns the seq of the next message after the NBIRTH.
func (c *seqCounter) take() uint64 {
	n := c.next
	c.next++
	return uint64(n)
}
