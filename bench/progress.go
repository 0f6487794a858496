package bench

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Progress counts what a run has done so far, for the progress line.
type Progress struct {
	Sent, Acked atomic.Int64
	Scenario    atomic.Value // string
	Receiver    *Receiver
}

// Report writes a progress line to w every interval until stop is closed:
// rewritten in place on a terminal (tty), one line each otherwise.
func (p *Progress) Report(w io.Writer, tty bool, interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastDelivered, lastAcked int64
	last := time.Now()
	for {
		select {
		case <-stop:
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		case now := <-t.C:
			var delivered int64
			if p.Receiver != nil {
				delivered = p.Receiver.Delivered()
			}
			acked := p.Acked.Load()
			el := now.Sub(last).Seconds()
			scenario, _ := p.Scenario.Load().(string)
			line := fmt.Sprintf("[%s] sent %d, acked %d (%.0f/s), delivered %d (%.0f/s)", scenario, p.Sent.Load(), acked,
				float64(acked-lastAcked)/el, delivered, float64(delivered-lastDelivered)/el)
			lastDelivered, lastAcked, last = delivered, acked, now
			if tty {
				fmt.Fprint(w, "\r\033[K"+line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}
}
