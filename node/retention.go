package node

import (
	"context"
	"errors"
	"time"

	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/raftstore"
)

// SetRetention sets a store's own retention policy (zero: the default).
func (n *Node) SetRetention(ctx context.Context, store string, r hlog.Retention) error {
	if err := n.leaderWrite(); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	return apiError(n.raft.SetRetention(store, r))
}

// retentionOf is the policy in force for store: its own, else the default.
func (n *Node) retentionOf(store string) (hlog.Retention, error) {
	r, err := n.db.RetentionOf(store)
	if err != nil || !r.IsZero() {
		return r, err
	}
	return n.cfg.Retention, nil
}

// retentionLoop applies the retention policies while this node leads:
// every interval it proposes, per store, the removal of what the policy
// allows at that moment. The FSM lowers each removal to spare what
// subscriptions still need, so the decision here may be stale but never
// unsafe.
func (n *Node) retentionLoop() {
	defer n.wg.Done()
	interval := n.cfg.RetentionInterval
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if !n.raft.IsLeader() {
			continue
		}
		if err := n.applyRetention(time.Now()); err != nil && !errors.Is(err, raftstore.ErrNotLeader) {
			n.log.Warn("retention pass failed", "error", err)
		}
	}
}

func (n *Node) applyRetention(now time.Time) error {
	stores, err := n.db.Stores()
	if err != nil {
		return err
	}
	for _, si := range stores {
		pol, err := n.retentionOf(si.Name)
		if err != nil {
			return err
		}
		if pol.IsZero() {
			continue
		}
		for {
			target, err := n.db.CompactionTarget(si.Name, pol, now)
			if err != nil {
				return err
			}
			first := si.FirstSeq
			if cur, err := n.db.Store(si.Name); err == nil {
				first = cur.FirstSeq
			}
			if target < first {
				break
			}
			removed, err := n.raft.Compact(si.Name, target)
			if err != nil {
				return err
			}
			if removed > 0 {
				n.log.Info("retention removed events", "store", si.Name, "removed", removed, "up_to", min(target, first+removed-1))
			}
			if removed < hlog.MaxCompactPerCommand {
				break // done, or held back by a subscription
			}
		}
	}
	return nil
}
