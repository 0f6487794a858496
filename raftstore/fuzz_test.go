package raftstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
)

// errRollback undoes each fuzz input's transaction, so inputs do not
// build on one another.
var errRollback = errors.New("fuzz: roll back")

// FuzzCommand feeds the command processor arbitrary entries. Whatever
// the bytes, applying them must not panic, and an error must be one the
// FSM handles deterministically: an undecodable command (ErrBadCommand:
// the node stops, the same on every replica), a refusal of bbolt's
// (rolled back, a result), or a corrupt record. Any other error would be
// taken for a storage failure and retried forever: the poison entry of
// issue 11.
func FuzzCommand(f *testing.F) {
	sub := goldenSub()
	for _, seed := range [][]byte{
		EncodeAppend([]AppendRequest{{Store: "s", Events: []hlog.NewEvent{{ID: "e1", Type: "t", Version: "1", Timestamp: 1, Data: []byte(`{}`)}}}}),
		encodeSetNode(hlog.NodeMeta{ID: "n1", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}),
		encodeDeleteNode("n1"),
		encodeCreateSub(&sub, 0),
		encodePatchSub(sub.ID, &hlog.SubPatch{}, 1),
		encodeRotate(sub.ID, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 2, 1),
		encodeRedeliver(sub.ID, 1, 1),
		encodeReplay(sub.ID, 1, true, 1),
		EncodeDeliveries(&hlog.DeliveryBatch{Now: 1, Keep: 10}),
		encodeCreateKey(&hlog.APIKey{ID: "key_1", Name: "k", Hash: strings.Repeat("ab", 32), Admin: true, CreatedAt: 1}),
		encodeToken(cmdCreateToken, strings.Repeat("cd", 32), 10, 1),
		encodeToken(cmdUseToken, strings.Repeat("cd", 32), 0, 2),
		encodePutDataKey(hlog.DataKey{ID: 1, Wrapped: append([]byte{1}, make([]byte, 8+24+32+16)...)}),
		encodeReseal(sub.ID, []hlog.Reseal{{Old: "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", New: "hsec1." + strings.Repeat("A", 60)}, {Header: "Authorization", Old: "a", New: "b"}}, 3),
		{cmdVersion1, 0xff},
		{0xff, 0x01},
		{},
	} {
		f.Add(seed)
	}
	d := testutil.TempDB(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var applyErr error
		done := make(chan error, 1)
		go func() {
			done <- d.Update(func(tx *hlog.Tx) error {
				_, applyErr = applyCommand(tx, data)
				return errRollback
			})
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(2 * time.Second):
			// A slow entry stalls every replica's FSM.
			t.Fatalf("applying %d bytes took over 2 s", len(data))
		}
		if !errors.Is(err, errRollback) {
			t.Fatalf("update: %v", err)
		}
		if applyErr != nil && !errors.Is(applyErr, ErrBadCommand) && !refusal(applyErr) && !errors.Is(applyErr, hlog.ErrCorrupt) {
			t.Fatalf("an input-dependent error the FSM would retry forever: %v", applyErr)
		}
	})
}
