package node

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/raftstore"
)

var _ httpapi.Service = (*Node)(nil)

// Publish assigns ids (when the client gave none), the default version and
// the acceptance timestamp on the node that accepted the request,
// validates, and commits: through the group commit on the leader, or by
// handing the identified events to the leader from a follower (see
// commit).
func (n *Node) Publish(ctx context.Context, req httpapi.PublishRequest) ([]hlog.Appended, error) {
	if req.Store == hlog.HeraldStore {
		return nil, fmt.Errorf("%w: store %s holds Herald's own operational events; it cannot be published to", hlog.ErrReservedStore, hlog.HeraldStore)
	}
	now := time.Now().UTC()
	evs := make([]hlog.NewEvent, len(req.Events))
	for i, e := range req.Events {
		if e.ID == "" {
			e.ID = n.ids.next(now)
		}
		if e.Version == "" {
			e.Version = "1"
		}
		e.Timestamp = now.UnixNano()
		evs[i] = e
	}
	if err := hlog.ValidateAppend(req.Store, evs); err != nil {
		return nil, err
	}
	areq := raftstore.AppendRequest{Store: req.Store, Events: evs}
	if req.Forwarded {
		// Another node sent these events here as to the leader. Commit
		// them if this node leads, else answer at once: the sender
		// retries, so events never hop from node to node.
		if !n.raft.IsLeader() {
			return nil, apiError(raftstore.ErrNotLeader)
		}
		res, err := n.batch.submit(ctx, areq)
		return res, apiError(err)
	}
	return n.commit(ctx, areq)
}

// checkRead enforces a read's consistency level before a local read.
func (n *Node) checkRead(ctx context.Context, c api.Consistency) error {
	switch c {
	case api.ConsistencyLocal:
		return nil
	case api.ConsistencyLinearizable:
		return apiError(n.raft.ReadIndex(ctx))
	default: // leader
		if !n.raft.IsLeader() {
			return apiError(raftstore.ErrNotLeader)
		}
		return nil
	}
}

// Read returns events after req.Options.After, long-polling up to req.Wait
// for the first match.
func (n *Node) Read(ctx context.Context, req httpapi.ReadRequest) ([]hlog.Event, uint64, error) {
	if err := n.checkRead(ctx, req.Consistency); err != nil {
		return nil, 0, err
	}
	var deadline <-chan time.Time
	if req.Wait > 0 {
		if w := n.waiters.Add(1); w > int64(n.cfg.MaxWaiters) {
			n.waiters.Add(-1)
			return nil, 0, fmt.Errorf("%w: %d reads already wait on this node (the most it lets wait); retry, or read without wait", httpapi.ErrUnavailable, n.cfg.MaxWaiters)
		}
		defer n.waiters.Add(-1)
		t := time.NewTimer(req.Wait)
		defer t.Stop()
		deadline = t.C
	}
	opts := req.Options
	for {
		changed := n.db.StoreChanged(req.Store) // taken before the read: no missed wake-up
		evs, next, err := n.db.Read(req.Store, opts)
		if err != nil || len(evs) > 0 || deadline == nil {
			return evs, next, err
		}
		opts.After = next // a type filter may have skipped records
		select {
		case <-changed:
		case <-deadline:
			return nil, next, nil
		case <-ctx.Done():
			return nil, next, nil
		case <-n.stop:
			return nil, next, nil
		}
	}
}

// Get returns one event by id.
func (n *Node) Get(ctx context.Context, store, id string, c api.Consistency) (hlog.Event, error) {
	if err := n.checkRead(ctx, c); err != nil {
		return hlog.Event{}, err
	}
	return n.db.Get(store, id)
}

// Store returns a store's summary with its retention policy and what
// subscriptions hold back from it.
func (n *Node) Store(ctx context.Context, name string, c api.Consistency) (hlog.StoreInfo, error) {
	if err := n.checkRead(ctx, c); err != nil {
		return hlog.StoreInfo{}, err
	}
	si, err := n.db.Store(name)
	if err != nil {
		return si, err
	}
	pol, err := n.retentionOf(name)
	if err != nil || pol.IsZero() {
		return si, err
	}
	si.Retention = &pol
	target, err := n.db.CompactionTarget(name, pol, time.Now())
	if err != nil {
		return si, err
	}
	hold, by, err := n.db.HoldBack(name)
	if err == nil && target >= hold {
		si.HeldBack, si.HeldBy = target-(hold-1), strings.Join(by, ",")
	}
	return si, err
}

// Types returns a store's type index: the types of its events with
// their counts and newest events, kept by the FSM (package log).
func (n *Node) Types(ctx context.Context, name string, c api.Consistency) (hlog.StoreTypes, error) {
	if err := n.checkRead(ctx, c); err != nil {
		return hlog.StoreTypes{}, err
	}
	return n.db.Types(name)
}

// Stores lists every store.
func (n *Node) Stores(ctx context.Context, c api.Consistency) ([]hlog.StoreInfo, error) {
	if err := n.checkRead(ctx, c); err != nil {
		return nil, err
	}
	return n.db.Stores()
}

// Ready is nil when a leader is known and this node has applied all it
// knows to be committed.
func (n *Node) Ready(ctx context.Context) error {
	if err := n.raft.StorageError(); err != nil {
		return fmt.Errorf("%w: writing the event log fails: %v", httpapi.ErrNotReady, err)
	}
	id, _ := n.raft.Leader()
	if id == "" {
		return fmt.Errorf("%w: no leader known", httpapi.ErrNotReady)
	}
	commit, applied := n.raft.CommitIndex(), n.raft.AppliedIndex()
	if applied < commit {
		return fmt.Errorf("%w: catching up: applied %d of %d", httpapi.ErrNotReady, applied, commit)
	}
	return nil
}

// Backup writes a consistent copy of this node's event log to w, from one
// read transaction. It serves any node; the copy is as fresh as this
// node's applied index.
func (n *Node) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return n.db.WriteToContext(ctx, w)
}
