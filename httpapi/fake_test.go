package httpapi

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
)

// fakeService implements Service over a real event log, without Raft: it
// is a leader of one unless notLeader is set.
type fakeService struct {
	db        *hlog.DB
	mu        sync.Mutex
	n         int
	dataKeys  uint32
	notLeader bool
	leader    string // LeaderHTTPAddr when notLeader
	readyErr  error
	joined    []api.JoinRequest
	keys      map[string]api.Key // by the key itself
	tokenTTL  time.Duration
}

func newFake(t *testing.T) *fakeService {
	t.Helper()
	return &fakeService{db: testutil.TempDB(t)} // checked (bbolt, hash chains) on cleanup
}

func (f *fakeService) leaderCheck(c api.Consistency) error {
	if f.notLeader && c != api.ConsistencyLocal {
		return fmt.Errorf("%w: fake follower", ErrNotLeader)
	}
	return nil
}

func (f *fakeService) Publish(ctx context.Context, req PublishRequest) ([]hlog.Appended, error) {
	if err := f.leaderCheck(api.ConsistencyLeader); err != nil {
		return nil, err
	}
	if req.Store == hlog.HeraldStore {
		return nil, fmt.Errorf("%w: fake", hlog.ErrReservedStore)
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

func (f *fakeService) Get(ctx context.Context, store, id string, c api.Consistency) (hlog.Event, error) {
	if err := f.leaderCheck(c); err != nil {
		return hlog.Event{}, err
	}
	return f.db.Get(store, id)
}

func (f *fakeService) Store(ctx context.Context, name string, c api.Consistency) (hlog.StoreInfo, error) {
	if err := f.leaderCheck(c); err != nil {
		return hlog.StoreInfo{}, err
	}
	return f.db.Store(name)
}

func (f *fakeService) Types(ctx context.Context, name string, c api.Consistency) (hlog.StoreTypes, error) {
	if err := f.leaderCheck(c); err != nil {
		return hlog.StoreTypes{}, err
	}
	return f.db.Types(name)
}

func (f *fakeService) Stores(ctx context.Context, c api.Consistency) ([]hlog.StoreInfo, error) {
	if err := f.leaderCheck(c); err != nil {
		return nil, err
	}
	return f.db.Stores()
}

func (f *fakeService) Cluster(ctx context.Context, c api.Consistency) (api.Cluster, error) {
	return api.Cluster{ID: "fake", Leader: "fake", Nodes: []api.Node{{ID: "fake", State: "leader", Suffrage: "voter"}}}, nil
}

func (f *fakeService) Join(ctx context.Context, req api.JoinRequest) error {
	if err := f.leaderCheck(api.ConsistencyLeader); err != nil {
		return err
	}
	if req.ID == "" || req.RaftAddr == "" || req.HTTPAddr == "" {
		return fmt.Errorf("%w: id, raft_addr and http_addr are required", ErrInvalidMember)
	}
	f.mu.Lock()
	f.joined = append(f.joined, req)
	f.mu.Unlock()
	return nil
}

func (f *fakeService) Ready(ctx context.Context) error { return f.readyErr }

func (f *fakeService) RelayTarget() (string, string) {
	if f.notLeader && f.leader != "" {
		return "http://" + f.leader, f.leader
	}
	return "", ""
}

func openBenchDB(b *testing.B) (*hlog.DB, error) {
	db, err := hlog.Open(filepath.Join(b.TempDir(), "events.db"), hlog.Options{})
	if err == nil {
		b.Cleanup(func() { db.Close() })
	}
	return db, err
}

func (f *fakeService) Remove(ctx context.Context, id string) error {
	if err := f.leaderCheck(api.ConsistencyLeader); err != nil {
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
	if err := f.leaderCheck(api.ConsistencyLeader); err != nil {
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

// Subscriptions: the fake applies the log's commands directly, as the FSM
// would, so the API is tested against real storage.

func (f *fakeService) subIn(store, id string) (hlog.Subscription, error) {
	s, err := f.db.Subscription(id)
	if err != nil {
		return s, err
	}
	if s.Store != store {
		return hlog.Subscription{}, fmt.Errorf("%w: %s", hlog.ErrSubscriptionNotFound, id)
	}
	return s, nil
}

func (f *fakeService) CreateSubscription(ctx context.Context, req CreateSubscriptionRequest) (hlog.Subscription, error) {
	if err := f.leaderCheck(api.ConsistencyLeader); err != nil {
		return hlog.Subscription{}, err
	}
	// As the node does: defaults, the client's fields, validation.
	var from uint64
	if req.FromSeq != nil {
		if *req.FromSeq == 0 {
			return hlog.Subscription{}, fmt.Errorf("%w: from_seq must be 1 or more", hlog.ErrInvalidSubscription)
		}
		from = *req.FromSeq
	}
	s := hlog.Subscription{Store: req.Store}
	s.ApplyDefaults()
	req.Patch.Apply(&s)
	f.mu.Lock()
	f.n++
	s.ID = fmt.Sprintf("sub_%06d", f.n)
	f.mu.Unlock()
	s.CreatedAt, s.UpdatedAt = time.Now().UnixNano(), time.Now().UnixNano()
	s.Secrets = []hlog.Secret{{Key: req.Secret}}
	if req.Secret == "" {
		s.Secrets[0].Key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	}
	if err := s.Validate(); err != nil {
		return hlog.Subscription{}, err
	}
	if err := f.db.Update(func(tx *hlog.Tx) error { return tx.CreateSubscription(s, from) }); err != nil {
		return hlog.Subscription{}, err
	}
	return f.db.Subscription(s.ID)
}

func (f *fakeService) ListSubscriptions(ctx context.Context, store string, c api.Consistency) ([]hlog.Subscription, error) {
	if err := f.leaderCheck(c); err != nil {
		return nil, err
	}
	return f.db.Subscriptions(store)
}

func (f *fakeService) GetSubscription(ctx context.Context, store, id string, c api.Consistency) (hlog.Subscription, error) {
	if err := f.leaderCheck(c); err != nil {
		return hlog.Subscription{}, err
	}
	return f.subIn(store, id)
}

func (f *fakeService) UpdateSubscription(ctx context.Context, store, id string, p hlog.SubPatch) (out hlog.Subscription, err error) {
	if err := f.leaderCheck(api.ConsistencyLeader); err != nil {
		return out, err
	}
	if _, err := f.subIn(store, id); err != nil {
		return out, err
	}
	err = f.db.Update(func(tx *hlog.Tx) error {
		out, err = tx.PatchSubscription(id, p, time.Now().UnixNano())
		return err
	})
	return out, err
}

func (f *fakeService) DeleteSubscription(ctx context.Context, store, id string) error {
	if err := f.leaderCheck(api.ConsistencyLeader); err != nil {
		return err
	}
	if _, err := f.subIn(store, id); err != nil {
		return err
	}
	return f.db.Update(func(tx *hlog.Tx) error { return tx.DeleteSubscription(id) })
}

func (f *fakeService) RotateSecret(ctx context.Context, store, id string, req RotateRequest) (out hlog.Subscription, err error) {
	if _, err := f.subIn(store, id); err != nil {
		return out, err
	}
	grace, secret := 24*time.Hour, req.Secret
	if req.Grace != nil {
		grace = *req.Grace
	}
	if grace < 0 || grace > 168*time.Hour {
		return out, fmt.Errorf("%w: grace", hlog.ErrInvalidSubscription)
	}
	if secret != "" {
		if err := hlog.ValidateSecret(secret); err != nil {
			return out, err
		}
	} else {
		secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	}
	now := time.Now()
	err = f.db.Update(func(tx *hlog.Tx) error {
		out, err = tx.RotateSecret(id, secret, now.Add(grace).UnixNano(), now.UnixNano())
		return err
	})
	return out, err
}

func (f *fakeService) Redeliver(ctx context.Context, store, id, eventID string) (out hlog.RetryEntry, err error) {
	if _, err := f.subIn(store, id); err != nil {
		return out, err
	}
	ev, err := f.db.Get(store, eventID)
	if err != nil {
		return out, err
	}
	err = f.db.Update(func(tx *hlog.Tx) error {
		out, err = tx.Redeliver(id, ev.Seq, time.Now().UnixNano())
		return err
	})
	return out, err
}

func (f *fakeService) Replay(ctx context.Context, store, id string, req ReplayRequest) (out api.ReplayResult, err error) {
	if _, err := f.subIn(store, id); err != nil {
		return out, err
	}
	from := req.FromSeq
	if from == 0 {
		from = 1 // the fake replays everything for a "since"
	}
	err = f.db.Update(func(tx *hlog.Tx) error {
		out.Queued, err = tx.Replay(id, from, req.OnlyDead, time.Now().UnixNano())
		return err
	})
	out.FromSeq = from
	return out, err
}

func (f *fakeService) TestSubscription(ctx context.Context, store, id string) (hlog.Attempt, error) {
	s, err := f.subIn(store, id)
	if err != nil {
		return hlog.Attempt{}, err
	}
	return hlog.Attempt{EventID: "evt_test", Attempt: 1, At: time.Now().UnixNano(), Status: 204, Outcome: hlog.OutcomeSucceeded,
		RequestHeaders: [][2]string{{"herald-subscription", s.ID}}}, nil
}

func (f *fakeService) Deliveries(ctx context.Context, store, id string, q DeliveriesQuery) (DeliveriesPage, error) {
	if _, err := f.subIn(store, id); err != nil {
		return DeliveriesPage{}, err
	}
	if q.Status == api.DeliveryPending {
		es, err := f.db.Retries(id, q.After, q.Limit)
		return DeliveriesPage{Pending: es}, err
	}
	as, next, err := f.db.Attempts(id, hlog.AttemptQuery{Outcome: hlog.Outcome(q.Status), After: q.After, Limit: q.Limit})
	return DeliveriesPage{Attempts: as, Next: next}, err
}

func (f *fakeService) EventDeliveries(ctx context.Context, store, id, eventID string, c api.Consistency) ([]hlog.Attempt, error) {
	if _, err := f.subIn(store, id); err != nil {
		return nil, err
	}
	ev, err := f.db.Get(store, eventID)
	if err != nil {
		return nil, err
	}
	return f.db.EventAttempts(id, ev.Seq)
}

func (f *fakeService) SetRetention(ctx context.Context, store string, r hlog.Retention) error {
	if err := f.leaderCheck(api.ConsistencyLeader); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	return f.db.Update(func(tx *hlog.Tx) error { return tx.SetRetention(store, r) })
}
