package node

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/herald-io/herald/api"
)

// TestJoinRefusals: a join the leader can never apply is refused with a
// permanent code (a client must not retry it), and changes nothing.
func TestJoinRefusals(t *testing.T) {
	n := mustStartCluster(t, 1, nil)[0]
	c := clientOf(t, n)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  api.JoinRequest
		code api.ErrorCode
	}{
		{"missing raft_addr", api.JoinRequest{ID: "n2", HTTPAddr: "127.0.0.1:9"}, api.CodeInvalidMember},
		{"raft_addr without a port", api.JoinRequest{ID: "n2", RaftAddr: "127.0.0.1", HTTPAddr: "127.0.0.1:9"}, api.CodeInvalidMember},
		{"raft_addr port 0", api.JoinRequest{ID: "n2", RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:9"}, api.CodeInvalidMember},
		{"http_addr garbage", api.JoinRequest{ID: "n2", RaftAddr: "127.0.0.1:9", HTTPAddr: "::nope::"}, api.CodeInvalidMember},
		// A 40,000-byte id once made the FSM write a bbolt key over 32 KiB
		// and retry the failing entry forever, on every replica.
		{"a 40,000-byte id", api.JoinRequest{ID: strings.Repeat("x", 40000), RaftAddr: "127.0.0.1:9", HTTPAddr: "127.0.0.1:9", Voter: api.Ptr(false)}, api.CodeInvalidMember},
		{"a 65-byte id", api.JoinRequest{ID: strings.Repeat("x", 65), RaftAddr: "127.0.0.1:9", HTTPAddr: "127.0.0.1:9", Voter: api.Ptr(false)}, api.CodeInvalidMember},
		{"an id with a space", api.JoinRequest{ID: "n 2", RaftAddr: "127.0.0.1:9", HTTPAddr: "127.0.0.1:9", Voter: api.Ptr(false)}, api.CodeInvalidMember},
		{"a 40,000-byte address", api.JoinRequest{ID: "n2", RaftAddr: strings.Repeat("a", 40000) + ":9", HTTPAddr: "127.0.0.1:9", Voter: api.Ptr(false)}, api.CodeInvalidMember},
		{"the leader as a non-voter", api.JoinRequest{ID: n.ID(), RaftAddr: n.RaftAddr(), HTTPAddr: n.HTTPAddr(), Voter: api.Ptr(false)}, api.CodeConflict},
	} {
		_, err := c.Join(ctx, tc.req)
		var ae *api.Error
		if !api.IsCode(err, tc.code) || !errors.As(err, &ae) || ae.Retryable() {
			t.Errorf("%s: %v, want %s (not retryable)", tc.name, err, tc.code)
		}
	}
	info, err := n.Cluster(ctx, api.ConsistencyLocal)
	if err != nil || len(info.Nodes) != 1 || info.Nodes[0].Suffrage != "voter" || !n.IsLeader() {
		t.Fatalf("after refused joins: %+v %v", info, err)
	}
	// And the node still commits.
	mustPublish(t, n.HTTPAddr(), "s", `{"type":"t","data":1}`)
}
