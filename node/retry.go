package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/raftstore"
)

// commit gets a validated, fully identified request stored: through the
// group commit when this node leads, else by handing the events (ids and
// all) to the leader's API. Elections and lost leadership are ridden out
// for up to commitDeadline: a Raft entry caught by a leadership change may
// or may not have been committed, and sending the same ids again (here or
// to the new leader) stores each event exactly once, a copy that did make
// it coming back as the original. So the client sees one outcome, not a
// 503 it has to resolve itself. After such a retry, events the first
// attempt did store are reported as duplicates.
func (n *Node) commit(ctx context.Context, req raftstore.AppendRequest) ([]hlog.Appended, error) {
	ctx, cancel := context.WithTimeout(ctx, commitDeadline)
	defer cancel()
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				if lastErr == nil {
					lastErr = ctx.Err()
				}
				return nil, fmt.Errorf("%w: %v", httpapi.ErrNoLeader, lastErr)
			case <-time.After(retryPause):
			}
		}
		var res []hlog.Appended
		var err error
		switch leader, _ := n.raft.Leader(); {
		case n.raft.IsLeader():
			res, err = n.batch.submit(ctx, req)
			if errors.Is(err, raftstore.ErrLeadershipLost) {
				n.lostCommits.Add(1)
			}
		case leader == "":
			_, err = n.WaitLeader(ctx)
			if err == nil {
				err = raftstore.ErrNotLeader // go round and send it
			}
		default:
			if u := n.leaderClusterURL(); u != "" {
				res, err = n.publishTo(ctx, u, req)
			} else {
				err = raftstore.ErrNotLeader // leader's address not replicated here yet
			}
		}
		if err == nil || !retryable(err) {
			return res, apiError(err)
		}
		lastErr = err
		n.log.Debug("publish retried", "attempt", attempt, "error", err)
	}
}

const (
	commitDeadline = 5 * time.Second
	retryPause     = 20 * time.Millisecond
)

func retryable(err error) bool {
	return errors.Is(err, raftstore.ErrLeadershipLost) || errors.Is(err, raftstore.ErrNotLeader) ||
		errors.Is(err, errLeaderRefused) || errors.Is(err, context.DeadlineExceeded)
}

var errLeaderRefused = errors.New("the leader did not take the events")

// publishTo sends already-identified events to the leader's cluster port
// (url), as this node acting for the caller's identity, marked as
// forwarded so the leader answers itself. An answer from the leader
// that is an API error keeps its code (a 503 is retried by commit);
// failing to reach it is errLeaderRefused, also retried.
func (n *Node) publishTo(ctx context.Context, url string, req raftstore.AppendRequest) ([]hlog.Appended, error) {
	peers := n.peers
	if id := httpapi.IdentityFrom(ctx); id != nil {
		peers = peers.ForwardingFor(id.ForwardedFor())
	}
	c, err := peers.On(url)
	if err != nil {
		return nil, err
	}
	evs := make([]api.NewEvent, len(req.Events))
	for i, e := range req.Events {
		evs[i] = api.NewEvent{ID: e.ID, Type: e.Type, Version: e.Version, Data: e.Data, IdempotencyKey: e.IdempotencyKey}
	}
	var res *api.PublishResult
	if len(evs) == 1 {
		res, err = c.Publish(ctx, req.Store, evs[0])
	} else {
		res, err = c.PublishBatch(ctx, req.Store, evs)
	}
	var ae *api.Error
	switch {
	case errors.As(err, &ae) && ae.Retryable():
		return nil, fmt.Errorf("%w: %w", errLeaderRefused, err)
	case ae != nil:
		return nil, err // the leader's verdict, code and all
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errLeaderRefused, err)
	case len(res.Events) != len(req.Events):
		return nil, fmt.Errorf("%w: the leader answered %d events for %d", httpapi.ErrUnavailable, len(res.Events), len(req.Events))
	}
	out := make([]hlog.Appended, len(res.Events))
	for i, ev := range res.Events {
		out[i] = hlog.Appended{Event: ev, Duplicate: !res.Created}
	}
	return out, nil
}
