package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
)

// The fake's keys: in memory, the key itself as the map key (the node
// keeps hashes; what is tested here is the API's side).

func (f *fakeService) Authenticate(key string) (*Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[key]
	if !ok || (k.ExpiresAt != nil && !k.ExpiresAt.After(time.Now())) {
		return nil, fmt.Errorf("%w: unknown, revoked or expired API key", ErrUnauthorized)
	}
	return &Identity{KeyID: k.ID, Name: k.Name, Admin: k.Admin, Grants: k.Grants}, nil
}

func (f *fakeService) KeyIdentity(id string) (*Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.keys {
		if k.ID == id {
			return &Identity{KeyID: k.ID, Name: k.Name, Admin: k.Admin, Grants: k.Grants}, nil
		}
	}
	return nil, fmt.Errorf("%w: unknown key", ErrUnauthorized)
}

func (f *fakeService) CreateKey(ctx context.Context, req api.KeyRequest) (api.Key, error) {
	if err := f.leaderCheck(api.ConsistencyLeader); err != nil {
		return api.Key{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	k := api.Key{ID: fmt.Sprintf("key_%06d", f.n), Name: req.Name, Admin: req.Admin, Grants: req.Grants, CreatedAt: time.Now().UTC(), ExpiresAt: req.ExpiresAt}
	rec := hlog.APIKey{ID: k.ID, Name: k.Name, Admin: k.Admin, Grants: k.Grants, CreatedAt: k.CreatedAt.UnixNano(), Hash: fmt.Sprintf("%064x", f.n)}
	if err := hlog.ValidateKey(&rec); err != nil {
		return api.Key{}, err
	}
	if k.Grants == nil {
		k.Grants = []api.Grant{}
	}
	secret := fmt.Sprintf("hk_fake%06d", f.n)
	if f.keys == nil {
		f.keys = map[string]api.Key{}
	}
	f.keys[secret] = k
	k.Key = secret
	return k, nil
}

func (f *fakeService) Keys(ctx context.Context) ([]api.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.Key
	for _, k := range f.keys {
		out = append(out, k)
	}
	return out, nil
}

func (f *fakeService) Key(ctx context.Context, id string) (api.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.keys {
		if k.ID == id {
			return k, nil
		}
	}
	return api.Key{}, fmt.Errorf("%w: %s", hlog.ErrKeyNotFound, id)
}

func (f *fakeService) RevokeKey(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s, k := range f.keys {
		if k.ID == id {
			delete(f.keys, s)
			return nil
		}
	}
	return fmt.Errorf("%w: %s", hlog.ErrKeyNotFound, id)
}

func (f *fakeService) Hello() api.Hello { return api.Hello{ID: "fake", ClusterAddr: "127.0.0.1:1"} }

func (f *fakeService) CreateJoinToken(ctx context.Context, ttl time.Duration) (api.JoinToken, error) {
	f.mu.Lock()
	f.tokenTTL = ttl
	f.mu.Unlock()
	return api.JoinToken{Token: "hjt_fake", ExpiresAt: time.Now().Add(ttl).UTC(), CAFingerprint: fmt.Sprintf("%064x", 1)}, nil
}

func (f *fakeService) Enroll(ctx context.Context, req api.EnrollRequest) (api.EnrollResponse, error) {
	return api.EnrollResponse{}, fmt.Errorf("%w: the fake has no CA", ErrConflict)
}

func (f *fakeService) RotateSecretsKey(ctx context.Context) (api.SecretsKeyRotation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dataKeys++
	return api.SecretsKeyRotation{KeyID: f.dataKeys, MasterKey: "0123456789abcdef"}, nil
}

// MetricsHandler makes the fake serve /metrics: one counter.
func (f *fakeService) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		io.WriteString(w, "# HELP herald_fake_total A fake.\n# TYPE herald_fake_total counter\nherald_fake_total 1\n")
	})
}
