package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/node"
)

// FailoverResult is the outcome of a leader-kill run.
type FailoverResult struct {
	Acked      int           `json:"acked"`
	Errors     int           `json:"errors"`
	Lost       int           `json:"lost"`       // acknowledged but not stored: must be 0
	Duplicates int           `json:"duplicates"` // ids stored more than once: must be 0
	Gap        time.Duration `json:"gap_ns"`     // leader kill → first publish sent after it acknowledged
	Killed     string        `json:"killed"`
	NewLeader  string        `json:"new_leader"`
}

func (r FailoverResult) String() string {
	return fmt.Sprintf("failover       killed leader %s (no transfer); new leader %s; first publish acknowledged %v after the kill; acked=%d errors=%d lost=%d duplicates=%d",
		r.Killed, r.NewLeader, r.Gap.Round(time.Millisecond), r.Acked, r.Errors, r.Lost, r.Duplicates)
}

// Failover publishes steadily through the followers of an in-process
// cluster, closes the leader without a leadership transfer (as a crash
// would leave it), keeps publishing for `after`, then checks every
// acknowledged event on a survivor. Each request is tried once: riding out
// the election is the server's job.
func Failover(ctx context.Context, c *Cluster, clients, payload int, before, after time.Duration) (FailoverResult, error) {
	var res FailoverResult
	var leader *node.Node
	var survivors []*node.Node
	for _, n := range c.Nodes {
		if n.IsLeader() {
			leader = n
		} else {
			survivors = append(survivors, n)
		}
	}
	if leader == nil || len(survivors) < 2 {
		return res, errors.New("bench: failover needs a leader and two followers")
	}
	store := "bench-failover"
	data := Payload(payload)
	client := NewHTTPClient(clients)
	defer client.CloseIdleConnections()

	var (
		mu     sync.Mutex
		acked  []string
		killAt time.Time
		gap    time.Duration
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := "http://" + survivors[w%len(survivors)].HTTPAddr() + "/v1/stores/" + store + "/events"
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				id := fmt.Sprintf("f%d-%d", w, i)
				body := []byte(fmt.Sprintf(`{"id":%q,"type":"bench/failover","data":%s}`, id, data))
				sent := time.Now()
				err := post(ctx, client, url, body)
				done := time.Now()
				mu.Lock()
				if err != nil {
					res.Errors++
				} else {
					acked = append(acked, id)
					if !killAt.IsZero() && sent.After(killAt) && (gap == 0 || done.Sub(killAt) < gap) {
						gap = done.Sub(killAt)
					}
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // client back-off
				}
			}
		}()
	}
	sleepCtx(ctx, before)
	mu.Lock()
	killAt = time.Now()
	mu.Unlock()
	res.Killed = leader.ID()
	leader.Close()
	sleepCtx(ctx, after)
	close(stop)
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	// Account on a survivor once it has applied everything.
	check := survivors[0]
	for _, n := range survivors {
		if n.IsLeader() {
			res.NewLeader = n.ID()
			check = n
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for check.Ready(ctx) != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	res.Acked, res.Gap = len(acked), gap
	var err error
	res.Lost, res.Duplicates, err = account(check, store, acked)
	return res, err
}

// account checks acknowledged ids against a node's log: lost are acked ids
// it does not hold, duplicates ids it holds more than once.
func account(n *node.Node, store string, acked []string) (lost, duplicates int, err error) {
	for _, id := range acked {
		if _, err := n.DB().Get(store, id); err != nil {
			lost++
		}
	}
	seen := map[string]int{}
	var after uint64
	for {
		evs, next, err := n.DB().Read(store, hlog.ReadOptions{After: after, Limit: 1000})
		if err != nil {
			return lost, duplicates, err
		}
		for _, e := range evs {
			seen[e.ID]++
		}
		if len(evs) == 0 || next == after {
			break
		}
		after = next
	}
	for _, c := range seen {
		if c > 1 {
			duplicates++
		}
	}
	return lost, duplicates, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
