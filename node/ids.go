package node

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// idGen makes event ids: "evt_" + a ULID (48-bit millisecond time, 80 bits
// of randomness, Crockford base32), monotonic within a millisecond on this
// node, so ids sort by acceptance time.
type idGen struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

func newIDGen() *idGen { return &idGen{entropy: ulid.Monotonic(rand.Reader, 0)} }

func (g *idGen) next(now time.Time) string { return "evt_" + g.ulid(now) }

// ulid returns a new ULID, monotonic within this node.
func (g *idGen) ulid(now time.Time) string {
	g.mu.Lock()
	id, err := ulid.New(ulid.Timestamp(now), g.entropy)
	if err != nil {
		// The monotonic entropy overflowed within one millisecond: start
		// a fresh random sequence.
		g.entropy = ulid.Monotonic(rand.Reader, 0)
		id = ulid.MustNew(ulid.Timestamp(now), g.entropy)
	}
	g.mu.Unlock()
	return id.String()
}
