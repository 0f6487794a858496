package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

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
			if addr := n.LeaderHTTPAddr(); addr != "" {
				res, err = n.publishTo(ctx, addr, req)
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

var errLeaderRefused = errors.New("leader answered 503")

// publishTo sends already-identified events to the leader's API.
func (n *Node) publishTo(ctx context.Context, addr string, req raftstore.AppendRequest) ([]hlog.Appended, error) {
	type evOut struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		Version string          `json:"version"`
		Data    json.RawMessage `json:"data"`
	}
	var body []byte
	var err error
	single := len(req.Events) == 1
	evs := make([]evOut, len(req.Events))
	for i, e := range req.Events {
		evs[i] = evOut{ID: e.ID, Type: e.Type, Version: e.Version, Data: e.Data}
	}
	if single {
		body, err = json.Marshal(evs[0])
	} else {
		body, err = json.Marshal(map[string]any{"events": evs})
	}
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, n.nodeURL(addr)+"/v1/stores/"+req.Store+"/events", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Herald-Forwarded", "1") // the leader must answer itself
	if single && req.Events[0].IdempotencyKey != "" {
		hreq.Header.Set("Idempotency-Key", req.Events[0].IdempotencyKey)
	}
	resp, err := n.client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errLeaderRefused, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errLeaderRefused, err)
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		return nil, fmt.Errorf("%w: %s", errLeaderRefused, bytes.TrimSpace(raw))
	case resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: leader answered %s: %s", httpapi.ErrUnavailable, resp.Status, bytes.TrimSpace(raw))
	}
	var stored []hlog.Event
	if single {
		var ev hlog.Event
		err = json.Unmarshal(raw, &ev)
		stored = []hlog.Event{ev}
	} else {
		var page struct {
			Events []hlog.Event `json:"events"`
		}
		err = json.Unmarshal(raw, &page)
		stored = page.Events
	}
	if err != nil || len(stored) != len(req.Events) {
		return nil, fmt.Errorf("%w: unexpected answer from leader: %v", httpapi.ErrUnavailable, err)
	}
	out := make([]hlog.Appended, len(stored))
	for i, ev := range stored {
		out[i] = hlog.Appended{Event: ev, Duplicate: resp.StatusCode == http.StatusOK}
	}
	return out, nil
}
