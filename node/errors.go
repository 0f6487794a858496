package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/herald-io/herald/httpapi"
	"github.com/herald-io/herald/raftstore"
)

var errShuttingDown = fmt.Errorf("%w: node is shutting down", httpapi.ErrUnavailable)

// apiError maps raftstore's errors onto the API's sentinels (keeping the
// original in the chain); log errors pass through, the API maps them.
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raftstore.ErrNotLeader):
		return fmt.Errorf("%w: %w", httpapi.ErrNotLeader, err)
	case errors.Is(err, raftstore.ErrLeadershipLost):
		return fmt.Errorf("%w: %w (the write may or may not be committed; retry with the same id or Idempotency-Key)", httpapi.ErrUnavailable, err)
	case errors.Is(err, raftstore.ErrStorage):
		return fmt.Errorf("%w: %w (not stored; the node retries once the disk works)", httpapi.ErrUnavailable, err)
	case errors.Is(err, raftstore.ErrShutdown):
		return fmt.Errorf("%w: %w", httpapi.ErrUnavailable, err)
	case errors.Is(err, raftstore.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", httpapi.ErrTimeout, err)
	case errors.Is(err, raftstore.ErrRefused):
		return fmt.Errorf("%w: %w", httpapi.ErrTooLarge, err)
	case errors.Is(err, raftstore.ErrNotFound):
		return fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	}
	return err
}
