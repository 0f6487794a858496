package raftstore

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/wire"
	hlog "github.com/herald-io/herald/log"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenSub sets every field of log.Subscription (and of its Secret), so
// that every JSON tag is in the golden command.
func goldenSub() hlog.Subscription {
	return hlog.Subscription{
		ID: "sub_01KGOLDEN", Store: "shop-1", URL: "https://example.com/hooks/herald",
		Types: []string{"store/order/*", "store/stock/**"}, Description: "orders and stock",
		Ordered: true, MaxInFlight: 1, RateLimit: 12.5, Timeout: 15 * time.Second,
		RetrySchedule: []time.Duration{5 * time.Second, time.Minute}, Headers: map[string]string{"Authorization": "Bearer t", "X-Env": "test"},
		SensitiveHeaders: []string{"Authorization"},
		DisableAfter:     120 * time.Hour, CreatedAt: 1795341600000000001, UpdatedAt: 1795341600000000002,
		Status: hlog.SubDisabled, DisabledReason: hlog.DisabledGone,
		Secrets: []hlog.Secret{{Key: "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", ExpiresAt: 1795341600000000003}},
		Gen:     3, Epoch: 2, Cursor: 41, FailingSince: 1795341600000000004, Failures: 7, BreakerOpen: true,
		NextAttempt: 99, OldestAttempt: 12,
	}
}

func goldenPatch() hlog.SubPatch {
	url, desc, ordered, inFlight, rate := "https://example.com/v2", "v2", false, 8, 3.5
	timeout, disable, status := 10*time.Second, time.Hour, hlog.SubActive
	types, sched, headers, sensitive := []string{"a/*"}, []time.Duration{time.Second}, map[string]string{"X-A": "1"}, []string{"X-A"}
	return hlog.SubPatch{URL: &url, Types: &types, Description: &desc, Ordered: &ordered, MaxInFlight: &inFlight,
		RateLimit: &rate, Timeout: &timeout, RetrySchedule: &sched, Headers: &headers, SensitiveHeaders: &sensitive, DisableAfter: &disable, Status: &status}
}

// noZeroFields fails when a field of v (a struct) is unset: a field added
// to the type must be added to the golden value, and so to the file.
func noZeroFields(t *testing.T, v any) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := 0; i < rv.NumField(); i++ {
		if rv.Field(i).IsZero() {
			t.Errorf("%s.%s is not set in the golden value: set it and run with -update", rv.Type(), rv.Type().Field(i).Name)
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed: the subscription commands embed package log's JSON, so its tags are part of the replicated format "+
			"(raftstore/DESIGN.md). Entries already in Raft logs and snapshots are in the old form.\n got %q\nwant %q", path, got, want)
	}
}

// TestSubscriptionCommandGolden pins the encoding of the create and patch
// subscription commands, JSON tags included, and checks that the checked-in
// bytes still decode to the same values.
func TestSubscriptionCommandGolden(t *testing.T) {
	sub := goldenSub()
	noZeroFields(t, sub)
	noZeroFields(t, sub.Secrets[0])
	create := encodeCreateSub(&sub, 42)
	golden(t, "create_subscription.golden", create)

	p := goldenPatch()
	noZeroFields(t, p)
	patch := encodePatchSub("sub_01KGOLDEN", &p, 1795341600000000005)
	golden(t, "patch_subscription.golden", patch)

	// What is on file decodes to the same values; the form from before
	// sensitive headers (still in Raft logs and snapshots) to the same
	// values without them.
	for _, f := range []struct {
		name string
		typ  cmdType
		v0   bool
	}{{"create_subscription.golden", cmdCreateSub, false}, {"patch_subscription.golden", cmdPatchSub, false},
		{"create_subscription_v0.golden", cmdCreateSub, true}, {"patch_subscription_v0.golden", cmdPatchSub, true}} {
		sub, p := sub, p
		if f.v0 {
			sub.SensitiveHeaders, p.SensitiveHeaders = nil, nil
		}
		b, err := os.ReadFile(filepath.Join("testdata", f.name))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 2 || b[0] != cmdVersion1 || cmdType(b[1]) != f.typ {
			t.Fatalf("%s: header % x", f.name, b[:min(2, len(b))])
		}
		r := wire.NewReader(b[2:])
		switch f.typ {
		case cmdCreateSub:
			js, from := r.Bytes(), r.Uvarint()
			var got hlog.Subscription
			if err := json.Unmarshal(js, &got); err != nil || r.Err() != nil || r.Len() != 0 || from != 42 {
				t.Fatalf("%s: %v %v, %d bytes left, from %d", f.name, err, r.Err(), r.Len(), from)
			}
			if !reflect.DeepEqual(got, sub) {
				t.Errorf("%s decodes to\n%+v\nwant\n%+v", f.name, got, sub)
			}
		case cmdPatchSub:
			id, js, now := r.String(), r.Bytes(), int64(r.Uint64())
			var got hlog.SubPatch
			if err := json.Unmarshal(js, &got); err != nil || r.Err() != nil || r.Len() != 0 || id != "sub_01KGOLDEN" || now != 1795341600000000005 {
				t.Fatalf("%s: %v %v, %d bytes left, id %q now %d", f.name, err, r.Err(), r.Len(), id, now)
			}
			if !reflect.DeepEqual(got, p) {
				t.Errorf("%s decodes to\n%+v\nwant\n%+v", f.name, got, p)
			}
		}
	}
}
