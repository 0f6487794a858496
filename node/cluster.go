package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/herald-io/herald/httpapi"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/raftstore"
)

const membershipTimeout = 10 * time.Second

// Cluster describes the cluster. Only the leader knows whether its
// followers answer, so unless c is Local a follower that knows the leader
// returns ErrNotLeader (the API forwards the request there); with no
// leader known it answers with its own view.
func (n *Node) Cluster(ctx context.Context, c httpapi.Consistency) (httpapi.ClusterInfo, error) {
	if id, _ := n.raft.Leader(); c != httpapi.Local && id != "" && id != n.cfg.ID {
		return httpapi.ClusterInfo{}, apiError(raftstore.ErrNotLeader)
	}
	servers, err := n.raft.Servers()
	if err != nil {
		return httpapi.ClusterInfo{}, apiError(err)
	}
	metas, err := n.db.Nodes()
	if err != nil {
		return httpapi.ClusterInfo{}, err
	}
	httpOf := map[string]string{}
	for _, m := range metas {
		httpOf[m.ID] = m.HTTPAddr
	}
	leaderID, _ := n.raft.Leader()
	info := httpapi.ClusterInfo{
		ID:           n.cfg.ID,
		Leader:       leaderID,
		LeaderHTTP:   httpOf[leaderID],
		Nodes:        []httpapi.NodeInfo{},
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
	}
	for _, s := range servers {
		state := "unknown" // a follower cannot tell how its peers are
		switch {
		case s.ID == n.cfg.ID:
			state = n.raft.State()
		case s.ID == leaderID:
			state = "leader"
		case leaderID == n.cfg.ID && n.raft.Unreachable(s.ID):
			state = "unreachable"
		case leaderID == n.cfg.ID:
			state = "follower"
		}
		info.Nodes = append(info.Nodes, httpapi.NodeInfo{
			ID: s.ID, RaftAddr: s.Addr, HTTPAddr: httpOf[s.ID], State: state, Suffrage: s.Suffrage,
		})
	}
	return info, nil
}

// Join adds a voter or, with Voter false, a non-voter (or updates its
// address or promotes it) and records its HTTP address.
// Leader only; followers' APIs forward it.
func (n *Node) Join(ctx context.Context, req httpapi.JoinRequest) error {
	if req.ID == "" || req.RaftAddr == "" || req.HTTPAddr == "" {
		return fmt.Errorf("%w: id, raft_addr and http_addr are required", httpapi.ErrBadRequest)
	}
	if !n.raft.IsLeader() {
		return apiError(raftstore.ErrNotLeader)
	}
	voter := req.Voter == nil || *req.Voter
	add := n.raft.AddVoter
	if !voter {
		add = n.raft.AddNonvoter
	}
	if err := add(req.ID, req.RaftAddr, membershipTimeout); err != nil {
		return apiError(err)
	}
	n.log.Info("member joined", "id", req.ID, "raft", req.RaftAddr, "http", req.HTTPAddr, "voter", voter)
	return apiError(n.raft.SetNode(hlog.NodeMeta{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr}))
}

// LeaderHTTPAddr returns the leader's HTTP address, "" when unknown or
// when this node leads.
func (n *Node) LeaderHTTPAddr() string {
	id, _ := n.raft.Leader()
	if id == "" || id == n.cfg.ID {
		return ""
	}
	metas, err := n.db.Nodes()
	if err != nil {
		return ""
	}
	for _, m := range metas {
		if m.ID == id {
			return m.HTTPAddr
		}
	}
	return ""
}

// registerLoop keeps this node's entry in the replicated node table true:
// a new node joins through the --join addresses; a leader records itself;
// a member whose HTTP or Raft address changed asks the leader to update
// it. It re-checks every half second, which costs one local read.
func (n *Node) registerLoop() {
	defer n.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if err := n.register(); err != nil {
			n.log.Debug("registration pending", "error", err)
		}
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

func (n *Node) register() error {
	want := hlog.NodeMeta{ID: n.cfg.ID, RaftAddr: n.raft.Addr(), HTTPAddr: n.httpAddr}
	metas, err := n.db.Nodes()
	if err != nil {
		return err
	}
	for _, m := range metas {
		if m == want {
			return nil
		}
	}
	leaderID, _ := n.raft.Leader()
	switch {
	case leaderID == n.cfg.ID:
		return n.raft.SetNode(want)
	case leaderID != "":
		if addr := n.LeaderHTTPAddr(); addr != "" {
			return n.postJoin(addr, want)
		}
	}
	// No usable leader: a node that has never joined asks its --join peers.
	var last error = fmt.Errorf("no leader known")
	for _, addr := range n.cfg.Join {
		if last = n.postJoin(addr, want); last == nil {
			return nil
		}
	}
	return last
}

func (n *Node) postJoin(addr string, m hlog.NodeMeta) error {
	voter := !n.cfg.NonVoter
	body, _ := json.Marshal(httpapi.JoinRequest{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Voter: &voter})
	url := n.nodeURL(addr) + "/v1/cluster/nodes"
	ctx, cancel := context.WithTimeout(n.ctx, membershipTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("join via %s: %s: %s", addr, resp.Status, bytes.TrimSpace(msg))
	}
	n.log.Info("registered with cluster", "via", addr)
	return nil
}

// Remove takes a member out of the cluster and forgets its metadata.
// Leader only. Removing the leader itself is refused: transfer leadership
// first, so the cluster is never left waiting for an election it could
// have avoided.
func (n *Node) Remove(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: id is required", httpapi.ErrBadRequest)
	}
	if !n.raft.IsLeader() {
		return apiError(raftstore.ErrNotLeader)
	}
	if id == n.cfg.ID {
		return fmt.Errorf("%w: %s is the leader; transfer leadership first", httpapi.ErrConflict, id)
	}
	if err := n.raft.RemoveServer(id, membershipTimeout); err != nil {
		return apiError(err)
	}
	n.log.Info("member removed", "id", id)
	return nil
}

// TransferLeader hands leadership to the member to (any up-to-date voter
// when empty) and returns the new leader's id once it is known here.
func (n *Node) TransferLeader(ctx context.Context, to string) (string, error) {
	if !n.raft.IsLeader() {
		return "", apiError(raftstore.ErrNotLeader)
	}
	if n.raft.Voters() < 2 && to != n.cfg.ID {
		return "", fmt.Errorf("%w: no other voter to transfer leadership to", httpapi.ErrConflict)
	}
	if err := n.raft.TransferLeadership(to); err != nil {
		return "", apiError(err)
	}
	var leader string
	err := waitUntil(ctx, membershipTimeout, func() bool {
		leader, _ = n.raft.Leader()
		return leader != "" && (to == "" && leader != n.cfg.ID || leader == to)
	})
	if err != nil {
		return "", fmt.Errorf("%w: transfer started but no new leader seen: %v", httpapi.ErrTimeout, err)
	}
	n.log.Info("leadership transferred", "to", leader)
	return leader, nil
}
