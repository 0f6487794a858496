package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// LoopbackAddr returns "127.0.0.1:PORT" for a port that is free now and
// lies below the kernel's ephemeral range, for a listener that a test
// closes and opens again on the same port (a node's restart). A port from
// the ephemeral range (what ":0" gives) can be taken meanwhile by any
// outgoing connection's source port, or any other ":0" listener, on a
// busy machine; ports below the range are handed out by nobody.
func LoopbackAddr(t testing.TB) string {
	t.Helper()
	lo, _ := ephemeralRange()
	top := lo - 1
	bottom := max(top-12000, 10000)
	for i := 0; i < 200; i++ {
		p := bottom + rand.IntN(top-bottom)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // in use: another
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	t.Fatalf("no free loopback port below %d", lo)
	return ""
}

// ephemeralRange reads Linux's ip_local_port_range (32768-60999 when it
// cannot).
func ephemeralRange() (int, int) {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		var lo, hi int
		if _, err := fmt.Sscan(strings.TrimSpace(string(raw)), &lo, &hi); err == nil && lo > 11000 {
			return lo, hi
		}
	}
	return 32768, 60999
}
