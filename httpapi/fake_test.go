package httpapi

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	hlog "github.com/herald-io/herald/log"
)

// fakeService implements Service over a real event log, without Raft: it
// is a leader of one unless notLeader is set.
type fakeService struct {
	db        *hlog.DB
	mu        sync.Mutex
	n         int
	notLeader bool
	leader    string // LeaderHTTPAddr when notLeader
	readyErr  error
	joined    []JoinRequest
}

func newFake(t *testing.T) *fakeService {
	t.Helper()
	db, err := hlog.Open(filepath.Join(t.TempDir(), "events.db"), hlog.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Errorf("check: %v", err)
		}
		db.Close()
	})
	return &fakeService{db: db}
}

func (f *fakeService) leaderCheck(c Consistency) error {
	if f.notLeader && c != Local {
		return fmt.Errorf("%w: fake follower", ErrNotLeader)
	}
	return nil
}

func (f *fakeService) Publish(ctx context.Context, req PublishRequest) ([]hlog.Appended, error) {
	if err := f.leaderCheck(Leader); err != nil {
		return nil, err
	}
	f.mu.Lock()
	evs := make([]hlog.NewEvent, len(req.Events))
	for i, e := range req.Events {
		if e.ID == "" {
			f.n++
			e.ID = fmt.Sprintf("evt_%06d", f.n)
		}
		if e.Version == "" {
			e.Version = "1"
		}
		e.Timestamp = time.Now().UnixNano()
		evs[i] = e
	}
	f.mu.Unlock()
	var res []hlog.Appended
	err := f.db.Update(func(tx *hlog.Tx) error {
		var err error
		res, err = tx.Append(req.Store, evs)
		return err
	})
	return res, err
}

func (f *fakeService) Read(ctx context.Context, req ReadRequest) ([]hlog.Event, uint64, error) {
	if err := f.leaderCheck(req.Consistency); err != nil {
		return nil, 0, err
	}
	deadline := time.Now().Add(req.Wait)
	for {
		ch := f.db.Changed()
		evs, next, err := f.db.Read(req.Store, req.Options)
		if err != nil || len(evs) > 0 || time.Now().After(deadline) {
			return evs, next, err
		}
		req.Options.After = next
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
		case <-ctx.Done():
			return nil, next, nil
		}
	}
}

func (f *fakeService) Get(ctx context.Context, store, id string, c Consistency) (hlog.Event, error) {
	if err := f.leaderCheck(c); err != nil {
		return hlog.Event{}, err
	}
	return f.db.Get(store, id)
}

func (f *fakeService) Store(ctx context.Context, name string, c Consistency) (hlog.StoreInfo, error) {
	if err := f.leaderCheck(c); err != nil {
		return hlog.StoreInfo{}, err
	}
	return f.db.Store(name)
}

func (f *fakeService) Stores(ctx context.Context, c Consistency) ([]hlog.StoreInfo, error) {
	if err := f.leaderCheck(c); err != nil {
		return nil, err
	}
	return f.db.Stores()
}

func (f *fakeService) Cluster(ctx context.Context, c Consistency) (ClusterInfo, error) {
	return ClusterInfo{ID: "fake", Leader: "fake", Nodes: []NodeInfo{{ID: "fake", State: "leader", Suffrage: "voter"}}}, nil
}

func (f *fakeService) Join(ctx context.Context, req JoinRequest) error {
	if err := f.leaderCheck(Leader); err != nil {
		return err
	}
	f.mu.Lock()
	f.joined = append(f.joined, req)
	f.mu.Unlock()
	return nil
}

func (f *fakeService) Ready(ctx context.Context) error { return f.readyErr }

func (f *fakeService) LeaderHTTPAddr() string {
	if f.notLeader {
		return f.leader
	}
	return ""
}

func openBenchDB(b *testing.B) (*hlog.DB, error) {
	db, err := hlog.Open(filepath.Join(b.TempDir(), "events.db"), hlog.Options{})
	if err == nil {
		b.Cleanup(func() { db.Close() })
	}
	return db, err
}

func (f *fakeService) Remove(ctx context.Context, id string) error {
	if err := f.leaderCheck(Leader); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, j := range f.joined {
		if j.ID == id {
			f.joined = append(f.joined[:i], f.joined[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%w: member %s", ErrNotFound, id)
}

func (f *fakeService) TransferLeader(ctx context.Context, to string) (string, error) {
	if err := f.leaderCheck(Leader); err != nil {
		return "", err
	}
	if to == "" {
		to = "fake-2"
	}
	return to, nil
}

func (f *fakeService) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return f.db.WriteTo(w)
}
