package node

import (
	"context"
	"fmt"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/raftstore"
)

const membershipTimeout = 10 * time.Second

// joinCatchUpMax bounds how long a joining node may take to catch up
// with the log (a large log arrives as one snapshot) before it is
// promoted; JoinAnswerTimeout how long it may stay silent meanwhile.
const joinCatchUpMax = 30 * time.Minute

// Cluster describes the cluster. Only the leader knows whether its
// followers answer, so unless c is Local a follower that knows the leader
// returns ErrNotLeader (the API forwards the request there); with no
// leader known it answers with its own view.
func (n *Node) Cluster(ctx context.Context, c api.Consistency) (api.Cluster, error) {
	if id, _ := n.raft.Leader(); c != api.ConsistencyLocal && id != "" && id != n.cfg.ID {
		return api.Cluster{}, apiError(raftstore.ErrNotLeader)
	}
	servers, err := n.raft.Servers()
	if err != nil {
		return api.Cluster{}, apiError(err)
	}
	metas, err := n.db.Nodes()
	if err != nil {
		return api.Cluster{}, err
	}
	httpOf := map[string]string{}
	for _, m := range metas {
		httpOf[m.ID] = m.HTTPAddr
	}
	leaderID, _ := n.raft.Leader()
	info := api.Cluster{
		ID:             n.cfg.ID,
		Leader:         leaderID,
		LeaderHTTPAddr: httpOf[leaderID],
		Nodes:          []api.Node{},
		CommitIndex:    n.raft.CommitIndex(),
		AppliedIndex:   n.raft.AppliedIndex(),
	}
	for _, s := range servers {
		state := api.StateUnknown // a follower cannot tell how its peers are
		switch {
		case s.ID == n.cfg.ID:
			state = n.raft.State()
		case s.ID == leaderID:
			state = api.StateLeader
		case leaderID == n.cfg.ID && n.raft.Unreachable(s.ID):
			state = api.StateUnreachable
		case leaderID == n.cfg.ID:
			state = api.StateFollower
		}
		info.Nodes = append(info.Nodes, api.Node{
			ID: s.ID, RaftAddr: s.Addr, HTTPAddr: httpOf[s.ID], State: state, Suffrage: s.Suffrage,
		})
	}
	return info, nil
}

// Join adds a member, or updates its addresses, or promotes a non-voter.
// Leader only; followers' APIs forward it.
//
// A new member always enters as a non-voter, and is promoted to voter
// (when it asked to be one) only once it has applied the log up to the
// moment it was added, as Consul's autopilot does: a node that never
// answers from its Raft address cannot cost the cluster its quorum. A
// member that stays silent for JoinAnswerTimeout is removed again, and
// the configuration is as it was.
func (n *Node) Join(ctx context.Context, req api.JoinRequest) error {
	if req.ID == "" || req.RaftAddr == "" || req.HTTPAddr == "" {
		return fmt.Errorf("%w: id, raft_addr and http_addr are required", httpapi.ErrInvalidMember)
	}
	// Checked before anything is proposed, with the rules the FSM applies.
	if err := hlog.ValidateNode(hlog.NodeMeta{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr}); err != nil {
		return fmt.Errorf("%w: %v", httpapi.ErrInvalidMember, err)
	}
	if err := n.checkClusterAddr(ctx, req.RaftAddr); err != nil {
		return err
	}
	if !n.raft.IsLeader() {
		return apiError(raftstore.ErrNotLeader)
	}
	voter := req.Voter == nil || *req.Voter
	if !voter && req.ID == n.cfg.ID {
		// A permanent refusal, not a leadership problem: a client must
		// not retry it.
		return fmt.Errorf("%w: %s is the leader and cannot become a non-voter; transfer leadership first", httpapi.ErrConflict, req.ID)
	}
	current, err := n.suffrageOf(req.ID, req.RaftAddr)
	if err != nil {
		return apiError(err)
	}
	switch {
	case current == "voter" || (!voter && current == "nonvoter"):
		// Known already: at most an address changes (or a voter is
		// demoted), which cannot wait for anything.
		add := n.raft.AddVoter
		if !voter {
			add = n.raft.AddNonvoter
		}
		if err := add(req.ID, req.RaftAddr, membershipTimeout); err != nil {
			return apiError(err)
		}
	default:
		if current != "nonvoter+" { // not yet a non-voter at this address
			if err := n.raft.AddNonvoter(req.ID, req.RaftAddr, membershipTimeout); err != nil {
				return apiError(err)
			}
		}
		// The wait outlives a client that gives up: what it started is
		// finished (promoted, or removed again) either way.
		if err := n.awaitCatchUp(context.WithoutCancel(ctx), req.ID, req.RaftAddr); err != nil {
			if current == "" {
				if rerr := n.raft.RemoveServer(req.ID, membershipTimeout); rerr != nil {
					n.log.Warn("could not remove a joining node that did not catch up", "id", req.ID, "error", rerr)
				}
			}
			return err
		}
		if voter {
			if err := n.raft.AddVoter(req.ID, req.RaftAddr, membershipTimeout); err != nil {
				return apiError(err)
			}
		}
	}
	n.log.Info("member joined", "id", req.ID, "raft", req.RaftAddr, "http", req.HTTPAddr, "voter", voter)
	return apiError(n.raft.SetNode(hlog.NodeMeta{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr}))
}

// suffrageOf returns id's suffrage in the configuration: "voter",
// "nonvoter+" (a non-voter at addr already), "nonvoter" (at another
// address), or "" when it is not a member.
func (n *Node) suffrageOf(id, addr string) (string, error) {
	servers, err := n.raft.Servers()
	if err != nil {
		return "", err
	}
	for _, sv := range servers {
		if sv.ID != id {
			continue
		}
		if sv.Suffrage == "nonvoter" && sv.Addr == addr {
			return "nonvoter+", nil
		}
		return sv.Suffrage, nil
	}
	return "", nil
}

// awaitCatchUp waits until the member id, asked on its cluster port at
// addr, has applied the log up to this leader's commit index of now. It
// gives up when the member has not answered for JoinAnswerTimeout, or
// after joinCatchUpMax, or when this node stops leading.
func (n *Node) awaitCatchUp(ctx context.Context, id, addr string) error {
	target := n.raft.CommitIndex()
	c, err := n.members.On("https://" + addr)
	if err != nil {
		return err
	}
	start := time.Now()
	answered := start
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := c.Cluster(qctx, &api.QueryOptions{Consistency: api.ConsistencyLocal})
		cancel()
		switch {
		case err != nil:
			last = err
		case info.ID != id:
			last = fmt.Errorf("%s answers as %q", addr, info.ID)
		default:
			answered = time.Now()
			if info.AppliedIndex >= target {
				n.log.Info("joining node caught up", "id", id, "applied", info.AppliedIndex, "took", time.Since(start).Round(time.Millisecond))
				return nil
			}
		}
		if !n.raft.IsLeader() {
			return apiError(raftstore.ErrNotLeader)
		}
		if silent := time.Since(answered); silent > n.cfg.JoinAnswerTimeout {
			n.log.Warn("joining node did not answer; not added", "id", id, "raft", addr, "error", last)
			return fmt.Errorf("%w: %s did not answer the leader at %s for %s, so it was not added (is raft_addr reachable from the leader, and is the node running?)",
				httpapi.ErrTimeout, id, addr, silent.Round(time.Second))
		}
		if time.Since(start) > joinCatchUpMax {
			return fmt.Errorf("%w: %s did not catch up with the log within %s", httpapi.ErrTimeout, id, joinCatchUpMax)
		}
		select {
		case <-n.stop:
			return httpapi.ErrUnavailable
		case <-t.C:
		}
	}
}

// LeaderHTTPAddr returns the leader's HTTP address, "" when unknown or
// when this node leads.
func (n *Node) LeaderHTTPAddr() string {
	id, _ := n.raft.Leader()
	if id == "" || id == n.cfg.ID {
		return ""
	}
	return n.httpAddrOf(id)
}

func (n *Node) httpAddrOf(id string) string {
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

// leaderClusterURL is where requests for the leader go: its cluster port.
// "" when the leader is unknown or this node leads.
func (n *Node) leaderClusterURL() string {
	id, addr := n.raft.Leader()
	if id == "" || id == n.cfg.ID || addr == "" {
		return ""
	}
	return "https://" + addr
}

// RelayTarget implements httpapi.Leader: relayed requests go to the
// leader's cluster port, as this node.
func (n *Node) RelayTarget() (url, httpAddr string) {
	u := n.leaderClusterURL()
	if u == "" {
		return "", ""
	}
	id, _ := n.raft.Leader()
	return u, n.httpAddrOf(id)
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
	if n.raft.IsLeader() {
		if err := n.ensureAdminKey(); err != nil {
			n.log.Warn("first admin key not created yet", "error", err)
		}
		n.secretChores()
	}
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
		if u := n.leaderClusterURL(); u != "" {
			return n.postJoin(u, want)
		}
	}
	// No usable leader: a node that has never joined asks its --join
	// members where their cluster ports are, and joins there.
	var last error = fmt.Errorf("no leader known")
	for _, addr := range n.cfg.Join {
		ctx, cancel := context.WithTimeout(n.ctx, membershipTimeout)
		hello, err := n.helloOf(ctx, addr)
		cancel()
		if err != nil {
			last = fmt.Errorf("join via %s: %w", addr, err)
			continue
		}
		if last = n.postJoin("https://"+hello.ClusterAddr, want); last == nil {
			return nil
		}
	}
	return last
}

// postJoin asks the member at url (a cluster port) to add this node; the
// request is authenticated by this node's certificate.
func (n *Node) postJoin(url string, m hlog.NodeMeta) error {
	c, err := n.members.On(url)
	if err != nil {
		return err
	}
	voter := !n.cfg.NonVoter
	// The leader answers once this node has caught up with the log.
	ctx, cancel := context.WithTimeout(n.ctx, joinCatchUpMax+membershipTimeout)
	defer cancel()
	if _, err := c.Join(ctx, api.JoinRequest{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Voter: &voter}); err != nil {
		return fmt.Errorf("join via %s: %w", url, err)
	}
	n.log.Info("registered with cluster", "via", url)
	return nil
}

// Remove takes a member out of the cluster and forgets its metadata.
// Leader only. Removing the leader itself is refused: transfer leadership
// first, so the cluster is never left waiting for an election it could
// have avoided.
func (n *Node) Remove(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: id is required", httpapi.ErrInvalidMember)
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
