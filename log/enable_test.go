package log

import (
	"testing"
	"time"
)

// TestEnableMakesWaitingRetriesDue: enabling a paused or disabled
// subscription moves every retry entry due later to the enable command's
// time (entries already due keep theirs); pausing, and changes that do not
// enable, leave the retry set alone.
func TestEnableMakesWaitingRetriesDue(t *testing.T) {
	d := mustOpen(t)
	mustAppend(t, d, "shop", ev("e1", "t", `1`), ev("e2", "t", `2`), ev("e3", "t", `3`))
	s := mustCreateSub(t, d, newSub("sub_1", "shop"), 1)
	far := baseTime + int64(10*time.Hour)
	a1, a2 := attempt(1, 1, OutcomeFailed), attempt(2, 3, OutcomeFailed)
	a1.NextAt, a2.NextAt = far, far+1
	applyDeliveries(t, d, DeliveryBatch{Now: baseTime, Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Cursor: 3, Attempts: []Attempt{a1, a2}}}})
	early := baseTime + 5 // a redelivery, due long before the enable
	if err := d.Update(func(tx *Tx) error { _, err := tx.Redeliver(s.ID, 3, early); return err }); err != nil {
		t.Fatal(err)
	}
	nextAt := func() map[uint64]int64 {
		t.Helper()
		rs, err := d.Retries(s.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		m := map[uint64]int64{}
		for _, r := range rs {
			m[r.Seq] = r.NextAt
		}
		return m
	}
	patch := func(p SubPatch, now int64) {
		t.Helper()
		if err := d.Update(func(tx *Tx) error { _, err := tx.PatchSubscription(s.ID, p, now); return err }); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string, want map[uint64]int64) {
		t.Helper()
		got := nextAt()
		if len(got) != len(want) {
			t.Fatalf("%s: retry set %v, want %v", when, got, want)
		}
		for seq, at := range want {
			if got[seq] != at {
				t.Fatalf("%s: seq %d due at %d, want %d (retry set %v)", when, seq, got[seq], at, got)
			}
		}
	}
	paused, active, desc := SubPaused, SubActive, "x"
	before := map[uint64]int64{1: far, 2: far + 1, 3: early}

	patch(SubPatch{Description: &desc}, baseTime+10)
	check("a change to an active subscription", before)
	patch(SubPatch{Status: &paused}, baseTime+20)
	check("after pause", before)
	patch(SubPatch{Status: &paused}, baseTime+25)
	check("pausing again", before)

	enabledAt := baseTime + 30
	patch(SubPatch{Status: &active}, enabledAt)
	check("after enable", map[uint64]int64{1: enabledAt, 2: enabledAt, 3: early})
	rs, _ := d.Retries(s.ID, 0, 0)
	if rs[1].Attempts != 3 || rs[1].LastError != "HTTP 500" || !rs[2].Manual {
		t.Fatalf("enable changed more than the due time: %+v", rs)
	}
	// Enabling an active subscription again is no change of status.
	patch(SubPatch{Status: &active}, enabledAt+100)
	check("enable while active", map[uint64]int64{1: enabledAt, 2: enabledAt, 3: early})

	// A subscription Herald disabled: the same on enable.
	a1.NextAt = far
	applyDeliveries(t, d, DeliveryBatch{Now: baseTime + 40, Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Attempts: []Attempt{a1}, Disable: DisabledGone}}})
	if got, _ := d.Subscription(s.ID); got.Status != SubDisabled {
		t.Fatalf("status %s, want disabled", got.Status)
	}
	check("after disable", map[uint64]int64{1: far, 2: enabledAt, 3: early})
	reenabledAt := baseTime + 50
	patch(SubPatch{Status: &active}, reenabledAt)
	check("after enabling the disabled subscription", map[uint64]int64{1: reenabledAt, 2: enabledAt, 3: early})

	// An invalid patch that would enable changes nothing.
	patch(SubPatch{Status: &paused}, baseTime+60)
	a1.NextAt = far
	applyDeliveries(t, d, DeliveryBatch{Now: baseTime + 61, Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Attempts: []Attempt{a1}}}})
	bad := "ftp://nope"
	err := d.Update(func(tx *Tx) error {
		_, err := tx.PatchSubscription(s.ID, SubPatch{Status: &active, URL: &bad}, baseTime+70)
		return err
	})
	if err == nil {
		t.Fatal("invalid patch accepted")
	}
	check("after an invalid enable", map[uint64]int64{1: far, 2: enabledAt, 3: early})
}
