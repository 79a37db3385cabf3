package fieldtool

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// ProgressPrinter shows a scan's [Progress] on W (stderr): on a terminal
// (TTY set) as a bar redrawn in place at most ten times a second, otherwise
// as a plain line when the scan moves to another serial setting and at
// most every PlainEvery. It writes nothing else; call Clear before writing
// other lines to the same terminal. Not safe for concurrent use.
type ProgressPrinter struct {
	W          io.Writer
	TTY        bool
	PlainEvery time.Duration // default 10s

	last    time.Time
	setting Setting
	started bool
	shown   bool // a bar is on the screen
}

const barWidth = 30

// Update shows p.
func (pp *ProgressPrinter) Update(p Progress) {
	now := time.Now()
	if pp.TTY {
		if pp.shown && now.Sub(pp.last) < 100*time.Millisecond && p.Done < p.Total {
			return
		}
		pp.last = now
		fill := 0
		if p.Total > 0 {
			fill = barWidth * p.Done / p.Total
		}
		where := ""
		if p.Setting.Speed != 0 {
			where = p.Setting.String() + " "
		}
		fmt.Fprintf(pp.W, "\r\033[K[%s%s] %d/%d  %sunit %-3d  found %d  %s",
			strings.Repeat("#", fill), strings.Repeat(".", barWidth-fill), p.Done, p.Total, where, p.Unit, p.Found,
			p.Elapsed.Truncate(time.Second))
		pp.shown = true
		return
	}
	every := pp.PlainEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	if p.Done == p.Total && p.Total > 0 {
		return // the caller's summary says it
	}
	if pp.started && p.Setting == pp.setting && now.Sub(pp.last) < every {
		return
	}
	pp.started, pp.setting, pp.last = true, p.Setting, now
	where := ""
	if p.Setting.Speed != 0 {
		where = " at " + p.Setting.String()
	}
	fmt.Fprintf(pp.W, "m2m: scan: %d of %d tries done, %d found; trying unit %d%s (%s)\n",
		p.Done, p.Total, p.Found, p.Unit, where, p.Elapsed.Truncate(time.Second))
}

// Clear removes the bar from a terminal, so another line can be written.
func (pp *ProgressPrinter) Clear() {
	if pp.TTY && pp.shown {
		fmt.Fprint(pp.W, "\r\033[K")
		pp.shown = false
	}
}
