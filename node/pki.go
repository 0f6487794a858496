package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	"github.com/herald-io/herald/internal/clusterport"
	"github.com/herald-io/herald/internal/pki"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/raftstore"
)

// TLSDir is the directory in the data dir that holds the cluster CA and
// this node's certificate (all keys 0600).
const TLSDir = "tls"

// Certificate lifetimes. Certificates are not rotated yet (docs/security.md),
// so they are long.
const (
	caValidity   = 20 * 365 * 24 * time.Hour
	nodeValidity = 10 * 365 * 24 * time.Hour
	// enrollTimeout bounds how long a new node keeps asking its --join
	// members while they answer "not now" (no leader, unreachable).
	enrollTimeout = time.Minute
)

// ErrNoJoinToken: a new node that joins has no certificate and no token.
var ErrNoJoinToken = errors.New("node: a new node needs --join-token (from herald cluster token on a member) or the operator's --raft-tls-* certificates")

// clusterTLS is the node's side of the cluster port's TLS.
type clusterTLS struct {
	server *tls.Config
	client *tls.Config
	pool   *x509.CertPool // nil with operator PKI (the configs carry it)
	ca     *pki.CA        // the CA with its key: this node can sign for joiners
}

// member reports the node id of a verified peer.
func (c *clusterTLS) member(cs *tls.ConnectionState) (string, bool) {
	if c.pool != nil {
		return pki.PeerNodeID(*cs, c.pool)
	}
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return "", false // operator PKI: the handshake verified (or refused) it
	}
	return cs.PeerCertificates[0].Subject.CommonName, true
}

// setupTLS loads or creates the node's cluster certificates:
//   - the operator's (RaftTLS), when given;
//   - DATA/tls, when it holds a node certificate;
//   - a new CA and certificate, for a node that bootstraps a new cluster
//     or is the only member of one from before certificates;
//   - a node certificate issued from a CA copied into DATA/tls (the
//     rolling upgrade of a cluster from before certificates);
//   - enrollment with a join token, for a node that joins.
func (n *Node) setupTLS() (*clusterTLS, error) {
	if n.cfg.RaftTLS != nil {
		server := n.cfg.RaftTLS.Clone()
		server.ClientAuth = tls.RequireAndVerifyClientCert
		return &clusterTLS{server: server, client: n.cfg.RaftTLS.Clone()}, nil
	}
	dir := filepath.Join(n.cfg.DataDir, TLSDir)
	files, err := pki.ReadFiles(dir)
	if errors.Is(err, os.ErrNotExist) {
		files, err = n.newNodeFiles(dir)
	}
	if err != nil {
		return nil, err
	}
	return loadClusterTLS(files)
}

func loadClusterTLS(f pki.Files) (*clusterTLS, error) {
	cert, err := pki.Certificate(f.NodeCert, f.NodeKey, f.CACert)
	if err != nil {
		return nil, fmt.Errorf("node: %s: %w", TLSDir, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(f.CACert) {
		return nil, fmt.Errorf("node: %s/ca.crt holds no certificate", TLSDir)
	}
	c := &clusterTLS{server: pki.ServerConfig(cert, pool), client: pki.ClientConfig(cert, pool), pool: pool}
	if f.CAKey != nil {
		if c.ca, err = pki.LoadCA(f.CACert, f.CAKey); err != nil {
			return nil, fmt.Errorf("node: %s: %w", TLSDir, err)
		}
	}
	return c, nil
}

// newNodeFiles makes DATA/tls for a node that has none.
func (n *Node) newNodeFiles(dir string) (pki.Files, error) {
	now := time.Now()
	// A CA copied in by the operator (upgrading a cluster from before
	// certificates: docs/security.md) issues this node's certificate.
	caCert, cerr := os.ReadFile(filepath.Join(dir, "ca.crt"))
	caKey, kerr := os.ReadFile(filepath.Join(dir, "ca.key"))
	if cerr == nil && kerr == nil {
		ca, err := pki.LoadCA(caCert, caKey)
		if err != nil {
			return pki.Files{}, fmt.Errorf("node: %s: %w", dir, err)
		}
		return n.issueOwn(dir, ca, now, "issued this node's certificate from the CA in the data dir")
	}
	hasState := n.hasRaftState()
	switch {
	case !hasState && n.cfg.Bootstrap, hasState && n.onlyMember():
		ca, err := pki.NewCA("herald cluster CA", now, caValidity)
		if err != nil {
			return pki.Files{}, err
		}
		return n.issueOwn(dir, ca, now, "created the cluster CA and this node's certificate")
	case hasState:
		return pki.Files{}, fmt.Errorf("node: %s holds a cluster of several nodes from before certificates: create a CA once (herald cluster ca create --out DIR), copy its ca.crt and ca.key into each node's %s before starting it with this version (docs/security.md, Upgrading)", n.cfg.DataDir, dir)
	case n.cfg.JoinToken != "":
		return n.enroll(dir)
	}
	return pki.Files{}, ErrNoJoinToken
}

// onlyMember reports whether the event log knows no member but this node
// (a single node upgraded from before certificates).
func (n *Node) onlyMember() bool {
	metas, err := n.db.Nodes()
	if err != nil {
		return false
	}
	for _, m := range metas {
		if m.ID != n.cfg.ID {
			return false
		}
	}
	return true
}

func (n *Node) issueOwn(dir string, ca *pki.CA, now time.Time, what string) (pki.Files, error) {
	cert, key, err := ca.Issue(n.cfg.ID, now, nodeValidity)
	if err != nil {
		return pki.Files{}, err
	}
	f := pki.Files{CACert: ca.CertPEM, CAKey: ca.KeyPEM, NodeCert: cert, NodeKey: key}
	if err := pki.WriteFiles(dir, f); err != nil {
		return pki.Files{}, err
	}
	fp := ca.Fingerprint()
	n.log.Info(what, "dir", dir, "ca_fingerprint", hex.EncodeToString(fp[:8]))
	return f, nil
}

// enroll obtains this node's certificate with the join token: it asks a
// --join member for its cluster port (GET /v1/cluster/hello, no key),
// connects there checking the CA's fingerprint from the token, and sends
// a certificate request with the token.
func (n *Node) enroll(dir string) (pki.Files, error) {
	tok, err := pki.ParseToken(n.cfg.JoinToken)
	if err != nil {
		return pki.Files{}, fmt.Errorf("node: --join-token: %w", err)
	}
	keyPEM, key, err := pki.NewKey()
	if err != nil {
		return pki.Files{}, err
	}
	csr, err := pki.NewCSR(n.cfg.ID, key)
	if err != nil {
		return pki.Files{}, err
	}
	dialer := &clusterport.Dialer{TLS: pki.PinnedConfig(tok.Fingerprint)}
	pinned, err := api.NewClient(api.Config{
		Addresses:  []string{"https://127.0.0.1:1"}, // replaced by On
		HTTPClient: clusterHTTPClient(dialer, 30*time.Second),
		UserAgent:  "herald-node/" + n.cfg.ID,
		MaxRetries: -1,
	})
	if err != nil {
		return pki.Files{}, err
	}
	defer pinned.CloseIdleConnections()
	// Every --join member in turn, again while the answers say "later"
	// (no leader, an election, a member not up yet), for up to
	// enrollTimeout; a refusal (a spent or wrong token, an id in use)
	// ends it.
	deadline := time.Now().Add(enrollTimeout)
	var errs []error
	for attempt := 0; ; attempt++ {
		errs = errs[:0]
		for _, addr := range n.cfg.Join {
			ctx, cancel := context.WithTimeout(n.ctx, membershipTimeout)
			res, err := n.enrollVia(ctx, pinned, addr, api.EnrollRequest{Token: n.cfg.JoinToken, ID: n.cfg.ID, CSR: string(csr)})
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("via %s: %w", addr, err))
				var ae *api.Error
				if errors.As(err, &ae) && !ae.Retryable() || errors.Is(err, pki.ErrFingerprint) {
					return pki.Files{}, fmt.Errorf("node: enrolling with the join token failed: %w", err)
				}
				continue
			}
			f := pki.Files{CACert: []byte(res.CACert), CAKey: []byte(res.CAKey), NodeCert: []byte(res.Cert), NodeKey: keyPEM}
			if len(f.CAKey) == 0 {
				f.CAKey = nil
			}
			if _, err := loadClusterTLS(f); err != nil {
				return pki.Files{}, fmt.Errorf("node: enrollment answer: %w", err)
			}
			if err := pki.WriteFiles(dir, f); err != nil {
				return pki.Files{}, err
			}
			n.enrolledKey = res.SecretsKey // setupSecrets keeps it
			n.log.Info("enrolled: obtained this node's certificate with the join token", "via", addr, "dir", dir)
			return f, nil
		}
		if time.Now().After(deadline) || n.ctx.Err() != nil {
			break
		}
		n.log.Info("enrollment not possible yet; retrying", "attempt", attempt+1, "error", errors.Join(errs...))
		select {
		case <-n.ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return pki.Files{}, fmt.Errorf("node: enrolling with the join token failed: %w", errors.Join(errs...))
}

func (n *Node) enrollVia(ctx context.Context, pinned *api.Client, addr string, req api.EnrollRequest) (*api.EnrollResponse, error) {
	hello, err := n.helloOf(ctx, addr)
	if err != nil {
		return nil, err
	}
	c, err := pinned.On("https://" + hello.ClusterAddr)
	if err != nil {
		return nil, err
	}
	return c.Enroll(ctx, req)
}

// helloOf asks the member at a --join address (its HTTP API) where its
// cluster port is. The answer is not trusted: the TLS handshake there is.
func (n *Node) helloOf(ctx context.Context, addr string) (*api.Hello, error) {
	c, err := n.public.On(n.nodeURL(addr))
	if err != nil {
		return nil, err
	}
	h, err := c.Hello(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(h.ClusterAddr); err != nil {
		return nil, fmt.Errorf("%s named no usable cluster address: %w", addr, err)
	}
	return h, nil
}

// clusterHTTPClient is an HTTP client whose https:// requests go over
// the cluster port's HTTP channel.
func clusterHTTPClient(d *clusterport.Dialer, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return d.Dial(ctx, clusterport.ChanHTTP, addr)
			},
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Hello names this node's cluster port.
func (n *Node) Hello() api.Hello { return api.Hello{ID: n.cfg.ID, ClusterAddr: n.raft.Addr()} }

// CreateJoinToken makes a one-time join token, valid for ttl; leader only.
func (n *Node) CreateJoinToken(ctx context.Context, ttl time.Duration) (api.JoinToken, error) {
	if n.tls.ca == nil {
		return api.JoinToken{}, fmt.Errorf("%w: this cluster runs on the operator's certificates (--raft-tls-*): give a new node its own instead of a token", httpapi.ErrConflict)
	}
	if !n.raft.IsLeader() {
		return api.JoinToken{}, apiError(raftstore.ErrNotLeader)
	}
	tok, err := pki.NewToken(n.tls.ca.Fingerprint())
	if err != nil {
		return api.JoinToken{}, err
	}
	now := time.Now()
	h := tok.SecretHash()
	if err := n.raft.CreateJoinToken(hex.EncodeToString(h[:]), now.Add(ttl), now); err != nil {
		return api.JoinToken{}, apiError(err)
	}
	fp := n.tls.ca.Fingerprint()
	n.log.Info("join token created", "expires_in", ttl.String())
	return api.JoinToken{Token: tok.String(), ExpiresAt: now.Add(ttl).UTC(), CAFingerprint: hex.EncodeToString(fp[:])}, nil
}

// Enroll signs a joining node's certificate request in exchange for a
// valid join token, which it consumes (through Raft: once, cluster-wide).
// The request is checked before the token is spent.
func (n *Node) Enroll(ctx context.Context, req api.EnrollRequest) (api.EnrollResponse, error) {
	if n.tls.ca == nil {
		return api.EnrollResponse{}, fmt.Errorf("%w: this cluster runs on the operator's certificates; join tokens are not used", httpapi.ErrConflict)
	}
	tok, err := pki.ParseToken(req.Token)
	if err != nil {
		return api.EnrollResponse{}, fmt.Errorf("%w: %v", hlog.ErrInvalidJoinToken, err)
	}
	if tok.Fingerprint != n.tls.ca.Fingerprint() {
		return api.EnrollResponse{}, fmt.Errorf("%w: the token is not from this cluster", hlog.ErrInvalidJoinToken)
	}
	if err := hlog.ValidateNodeID(req.ID); err != nil {
		return api.EnrollResponse{}, fmt.Errorf("%w: %v", httpapi.ErrInvalidMember, err)
	}
	if !n.raft.IsLeader() {
		return api.EnrollResponse{}, apiError(raftstore.ErrNotLeader) // relayed: the leader spends tokens
	}
	if servers, err := n.raft.Servers(); err == nil {
		for _, sv := range servers {
			if sv.ID == req.ID {
				// A certificate for a member's id would let its holder
				// take that member's place.
				return api.EnrollResponse{}, fmt.Errorf("%w: %s is already a member; a new node needs a new id", httpapi.ErrConflict, req.ID)
			}
		}
	}
	h := tok.SecretHash()
	hash := hex.EncodeToString(h[:])
	if !n.db.HasJoinToken(hash) {
		return api.EnrollResponse{}, fmt.Errorf("%w: unknown or already used", hlog.ErrInvalidJoinToken)
	}
	now := time.Now()
	cert, err := n.tls.ca.SignCSR([]byte(req.CSR), req.ID, now, nodeValidity)
	if err != nil {
		return api.EnrollResponse{}, fmt.Errorf("%w: certificate request: %v", httpapi.ErrInvalidMember, err)
	}
	if err := n.raft.UseJoinToken(hash, now); err != nil {
		n.log.Warn("enrollment refused", "id", req.ID, "error", err)
		return api.EnrollResponse{}, apiError(err)
	}
	n.log.Info("enrolled a new node", "id", req.ID)
	res := api.EnrollResponse{Cert: string(cert), CACert: string(n.tls.ca.CertPEM), CAKey: string(n.tls.ca.KeyPEM)}
	if n.secrets.ring != nil {
		res.SecretsKey = n.secrets.ring.Master().String()
	}
	return res, nil
}
