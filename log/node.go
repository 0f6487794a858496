package log

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ErrInvalidNode means a node's id or addresses break the rules below;
// nothing was recorded.
var ErrInvalidNode = errors.New("invalid node")

// Limits of node metadata.
const (
	MaxNodeIDLen   = 64  // bytes, printable ASCII without spaces
	MaxNodeAddrLen = 255 // bytes, host:port
)

// ValidateNodeID checks a node id: what Raft, certificates and the node
// table carry.
func ValidateNodeID(id string) error {
	if id == "" || len(id) > MaxNodeIDLen {
		return fmt.Errorf("%w: id must be 1-%d bytes", ErrInvalidNode, MaxNodeIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: id must be printable ASCII without spaces", ErrInvalidNode)
		}
	}
	return nil
}

// ValidateNodeAddr checks a node address: host:port, port 1-65535.
func ValidateNodeAddr(addr string) error {
	if len(addr) > MaxNodeAddrLen {
		return fmt.Errorf("%w: address longer than %d bytes", ErrInvalidNode, MaxNodeAddrLen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %.100q is not host:port", ErrInvalidNode, addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
		return fmt.Errorf("%w: %.100q: want host:port with a port 1-65535", ErrInvalidNode, addr)
	}
	return nil
}

// ValidateNode checks a node's metadata: the same rules on the leader
// before it proposes (a join) and in the FSM.
func ValidateNode(n NodeMeta) error {
	if err := ValidateNodeID(n.ID); err != nil {
		return err
	}
	if err := ValidateNodeAddr(n.RaftAddr); err != nil {
		return fmt.Errorf("raft_addr: %w", err)
	}
	// The HTTP address may be advertised as a URL (http(s)://host:port).
	h := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(n.HTTPAddr, "https://"), "http://"), "/")
	if err := ValidateNodeAddr(h); err != nil {
		return fmt.Errorf("http_addr: %w", err)
	}
	return nil
}
