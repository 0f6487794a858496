package log

import (
	"fmt"
	"math/rand/v2"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// idIndexFill is the share of the id index's leaf pages that holds data.
func idIndexFill(t *testing.T, d *DB, store string) float64 {
	t.Helper()
	var fill float64
	err := d.db.View(func(tx *bolt.Tx) error {
		st := tx.Bucket(storeBucketName(store)).Bucket(subIDs).Stats()
		if st.LeafAlloc == 0 {
			return fmt.Errorf("id index of %s has no leaf pages", store)
		}
		fill = float64(st.LeafInuse) / float64(st.LeafAlloc)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fill
}

// TestIDIndexPacksIDsInOrder: ids that sort in publish order (Herald's
// ULIDs) fill the id index's pages (bbolt's default split leaves them
// half empty); ids in random order keep the default, and a batch with
// one id out of order does too (a packed page that takes an insert
// splits again at once). 20,000 events in batches of 100, one
// transaction each.
func TestIDIndexPacksIDsInOrder(t *testing.T) {
	d := mustOpen(t)
	const n, batch = 20000, 100
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
	fill := func(store string, id func(i int) string) {
		for i := 0; i < n; i += batch {
			evs := make([]NewEvent, batch)
			for j := range evs {
				evs[j] = ev(id(i+j), "store/order/created", `{"n":1}`)
			}
			mustAppend(t, d, store, evs...)
		}
	}
	fill("ordered", func(i int) string { return fmt.Sprintf("evt_%026d", i) })
	fill("random", func(i int) string { return fmt.Sprintf("evt_%026d", perm[i]) })
	// In order but for the first id of every batch, which sorts before
	// everything: each transaction writes inside the index once.
	fill("mixed", func(i int) string {
		if i%batch == 0 {
			return fmt.Sprintf("a%08d", i)
		}
		return fmt.Sprintf("evt_%026d", i)
	})
	ordered, random, mixed := idIndexFill(t, d, "ordered"), idIndexFill(t, d, "random"), idIndexFill(t, d, "mixed")
	t.Logf("id index leaf fill: in order %.2f, random %.2f, in order but one id per batch %.2f", ordered, random, mixed)
	if ordered < 0.85 {
		t.Errorf("ids in order fill %.2f of the index's pages, want >= 0.85", ordered)
	}
	if random < 0.4 || random > 0.85 {
		t.Errorf("random ids fill %.2f of the index's pages: not bbolt's default split", random)
	}
	if mixed > 0.75 {
		t.Errorf("ids mostly in order with one inside per transaction fill %.2f: they were packed", mixed)
	}
}
