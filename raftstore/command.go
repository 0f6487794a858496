package raftstore

import (
	"fmt"

	"github.com/herald-io/herald/internal/wire"
	hlog "github.com/herald-io/herald/log"
)

// Commands are versioned: byte 0 is the encoding version, byte 1 the
// command type. A node refuses (and panics on) a version it does not know,
// rather than guess; see DESIGN.md on upgrades.
const cmdVersion1 = 1

type cmdType byte

const (
	cmdAppend     cmdType = 1 // one or more append requests, applied in order
	cmdSetNode    cmdType = 2 // record a node's metadata
	cmdDeleteNode cmdType = 3 // forget a node's metadata
)

// AppendRequest is one client request: events for one store, all or
// nothing. Ids, timestamps and idempotency keys are already decided.
type AppendRequest struct {
	Store  string
	Events []hlog.NewEvent
}

// AppendResult is the outcome of one AppendRequest.
type AppendResult struct {
	Events []hlog.Appended
	// Err is a validation error (log.ErrInvalidStore, log.ErrInvalidEvent):
	// nothing of the request was stored.
	Err error
}

// EncodeAppend encodes requests as one Raft entry.
func EncodeAppend(reqs []AppendRequest) []byte {
	size := 8
	for _, r := range reqs {
		size += 8 + len(r.Store)
		for _, e := range r.Events {
			size += 24 + len(e.ID) + len(e.Type) + len(e.Version) + len(e.IdempotencyKey) + len(e.Data)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, cmdVersion1, byte(cmdAppend))
	b = wire.AppendUvarint(b, uint64(len(reqs)))
	for _, r := range reqs {
		b = wire.AppendString(b, r.Store)
		b = wire.AppendUvarint(b, uint64(len(r.Events)))
		for i := range r.Events {
			b = appendNewEvent(b, &r.Events[i])
		}
	}
	return b
}

func decodeAppend(r *wire.Reader) ([]AppendRequest, error) {
	n := r.Uvarint()
	if n > uint64(r.Len()) {
		return nil, fmt.Errorf("%w: append: %d requests in %d bytes", ErrBadCommand, n, r.Len())
	}
	reqs := make([]AppendRequest, 0, n)
	for i := uint64(0); i < n && r.Err() == nil; i++ {
		req := AppendRequest{Store: r.String()}
		m := r.Uvarint()
		if m > uint64(r.Len()) {
			return nil, fmt.Errorf("%w: append: %d events in %d bytes", ErrBadCommand, m, r.Len())
		}
		req.Events = make([]hlog.NewEvent, 0, m)
		for j := uint64(0); j < m && r.Err() == nil; j++ {
			e := readNewEvent(r)
			req.Events = append(req.Events, e)
		}
		reqs = append(reqs, req)
	}
	if r.Err() != nil {
		return nil, fmt.Errorf("%w: append: %v", ErrBadCommand, r.Err())
	}
	return reqs, nil
}

func appendNewEvent(b []byte, e *hlog.NewEvent) []byte {
	b = wire.AppendString(b, e.ID)
	b = wire.AppendString(b, e.Type)
	b = wire.AppendString(b, e.Version)
	b = wire.AppendString(b, e.IdempotencyKey)
	b = wire.AppendUint64(b, uint64(e.Timestamp))
	return wire.AppendBytes(b, e.Data)
}

func readNewEvent(r *wire.Reader) hlog.NewEvent {
	var e hlog.NewEvent
	e.ID = r.String()
	e.Type = r.String()
	e.Version = r.String()
	e.IdempotencyKey = r.String()
	e.Timestamp = int64(r.Uint64())
	e.Data = r.Bytes() // aliases the Raft entry, which outlives the apply
	return e
}

func encodeSetNode(n hlog.NodeMeta) []byte {
	b := []byte{cmdVersion1, byte(cmdSetNode)}
	b = wire.AppendString(b, n.ID)
	b = wire.AppendString(b, n.RaftAddr)
	return wire.AppendString(b, n.HTTPAddr)
}

func encodeDeleteNode(id string) []byte {
	return wire.AppendString([]byte{cmdVersion1, byte(cmdDeleteNode)}, id)
}
