package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/herald-io/herald/httpapi"
	"github.com/herald-io/herald/internal/netguard"
)

// checkDestination refuses, at create and update, an endpoint URL whose
// host is a denied literal or resolves to a denied address. Delivery
// checks again on every dial (a name may resolve differently later).
func (n *Node) checkDestination(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return nil // Validate words a malformed URL
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil
		}
	}
	return blockedError(n.guard.CheckHost(ctx, u.Hostname(), uint16(port)))
}

// checkClusterAddr refuses a joining node's Raft address that no member
// may have (unspecified, link-local, multicast, ...).
func (n *Node) checkClusterAddr(ctx context.Context, addr string) error {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil // the API checked host:port
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil
	}
	return blockedError(n.clusterGuard.CheckHost(ctx, host, uint16(port)))
}

func blockedError(err error) error {
	var be *netguard.BlockedError
	if errors.As(err, &be) {
		return fmt.Errorf("%w: %s", httpapi.ErrBlockedDestination, be.Reason())
	}
	return err
}

// Test events: each subscription may send testBurst at once and one more
// every testEvery, so /test cannot be made a traffic generator.
const (
	testBurst   = 5
	testEvery   = 2 * time.Second
	testLimiter = 10000 // limiters kept before the table is cleared
)

type testLimits struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// allow takes a token for sub, or returns the wait for the next one.
func (l *testLimits) allow(sub string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= testLimiter {
		l.m = map[string]*rate.Limiter{}
	}
	lim := l.m[sub]
	if lim == nil {
		lim = rate.NewLimiter(rate.Every(testEvery), testBurst)
		l.m[sub] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}
