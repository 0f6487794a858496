package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
)

// memCluster is three Stores over raft's in-memory transport, which the
// test can partition. A tweak changes node i's configuration.
type memCluster struct {
	t      *testing.T
	stores []*Store
	trans  []*raft.InmemTransport
}

func newMemCluster(t *testing.T, tweak ...func(i int, c *Config)) *memCluster {
	t.Helper()
	c := &memCluster{t: t}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := 0; i < 3; i++ {
		_, tr := raft.NewInmemTransportWithTimeout(raft.ServerAddress(fmt.Sprintf("mem%d", i)), 200*time.Millisecond)
		cfg := Config{
			ID:                 fmt.Sprintf("m%d", i),
			Dir:                t.TempDir(),
			Bind:               "unused",
			DB:                 mustDB(t),
			Logger:             quiet,
			Bootstrap:          i == 0,
			HeartbeatTimeout:   100 * time.Millisecond,
			ElectionTimeout:    100 * time.Millisecond,
			LeaderLeaseTimeout: 50 * time.Millisecond,
			ApplyTimeout:       time.Second,
			transport:          tr,
		}
		for _, fn := range tweak {
			fn(i, &cfg)
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.stores = append(c.stores, s)
		c.trans = append(c.trans, tr)
	}
	c.heal()
	for _, s := range c.stores {
		if err := s.Open(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close %s: %v", s.ID(), err)
			}
		})
	}
	waitUntil(t, "m0 leads", func() bool { return c.stores[0].IsLeader() })
	for i := 1; i < 3; i++ {
		if err := c.stores[0].AddVoter(c.stores[i].ID(), c.stores[i].Addr(), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// heal connects every pair.
func (c *memCluster) heal() {
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
}

// isolate cuts node i off from the others, both ways.
func (c *memCluster) isolate(i int) {
	c.trans[i].DisconnectAll()
	for j, tr := range c.trans {
		if j != i {
			tr.Disconnect(c.trans[i].LocalAddr())
		}
	}
}

func (c *memCluster) leader(among ...int) int {
	c.t.Helper()
	l := -1
	waitUntil(c.t, "a leader", func() bool {
		for _, i := range among {
			if c.stores[i].IsLeader() {
				l = i
				return true
			}
		}
		return false
	})
	return l
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}

func appendOne(s *Store, id string) error {
	res, err := s.ApplyAppend([]AppendRequest{{Store: "p", Events: []hlog.NewEvent{
		{ID: id, Type: "t", Version: "1", Timestamp: 1, Data: []byte(`{}`)},
	}}}).Wait()
	if err == nil && res[0].Err != nil {
		err = res[0].Err
	}
	return err
}

// TestPartitionedLeaderCannotServeLinearizableReads isolates the leader:
// it must stop acknowledging writes and refuse linearizable reads, the
// majority elects a new leader and goes on, and after healing every node
// holds the majority's log and nothing the isolated leader failed to
// commit.
func TestPartitionedLeaderCannotServeLinearizableReads(t *testing.T) {
	c := newMemCluster(t)
	old := c.leader(0, 1, 2)
	if err := appendOne(c.stores[old], "before"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.stores[old].ReadIndex(ctx); err != nil {
		t.Fatalf("healthy leader ReadIndex: %v", err)
	}

	c.isolate(old)
	var rest []int
	for i := range c.stores {
		if i != old {
			rest = append(rest, i)
		}
	}
	if err := appendOne(c.stores[old], "lost"); err == nil {
		t.Fatal("isolated leader acknowledged a write")
	}

	nl := c.leader(rest...)
	if err := appendOne(c.stores[nl], "after"); err != nil {
		t.Fatal(err)
	}
	// The majority has committed a write the isolated node cannot see: a
	// linearizable read there must fail rather than miss it. (Right at the
	// moment of isolation a read may still succeed on the strength of
	// acknowledgements of earlier heartbeats: until the followers' election
	// timeout passes, no other leader can exist.)
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := c.stores[old].ReadIndex(rctx)
	rcancel()
	if err == nil {
		t.Fatal("isolated old leader served a linearizable read after a new leader committed")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := c.stores[nl].ReadIndex(ctx2); err != nil {
		t.Fatalf("new leader ReadIndex: %v", err)
	}

	c.heal()
	waitUntil(t, "old leader steps down and catches up", func() bool {
		if c.stores[old].IsLeader() && old != nl {
			return false
		}
		si, err := c.stores[old].cfg.DB.Store("p")
		return err == nil && si.LastSeq == 2
	})
	var head string
	for _, s := range c.stores {
		waitUntil(t, s.ID()+" at seq 2", func() bool {
			si, err := s.cfg.DB.Store("p")
			return err == nil && si.LastSeq == 2
		})
		si, _ := s.cfg.DB.Store("p")
		if head == "" {
			head = si.HeadHash
		} else if si.HeadHash != head {
			t.Fatalf("%s head %s != %s", s.ID(), si.HeadHash, head)
		}
		if _, err := s.cfg.DB.Get("p", "lost"); !errors.Is(err, hlog.ErrEventNotFound) {
			t.Fatalf("%s holds the write the isolated leader never committed: %v", s.ID(), err)
		}
		if _, err := s.cfg.DB.Get("p", "after"); err != nil {
			t.Fatalf("%s lacks the majority's write: %v", s.ID(), err)
		}
	}
}
