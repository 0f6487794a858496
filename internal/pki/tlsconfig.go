package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// minTLS is the oldest TLS version of the cluster port. Every peer is a
// Herald node, so there is no older client to serve.
const minTLS = tls.VersionTLS13

// Certificate builds a node's TLS certificate from its PEM certificate
// and key, with the CA certificate (the first block of caPEM) appended to
// the chain (unless it ends with it already) and Leaf set. Servers must present their chain this way: a
// node that enrolls (PinnedConfig) finds the CA in it. The node
// certificate must be signed by the CA (ErrBadCA otherwise).
func Certificate(certPEM, keyPEM, caPEM []byte) (tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: node certificate and key: %w", err)
	}
	ca, err := parseCertPEM(caPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: %w", ErrBadCA, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("pki: node certificate: %w", err)
		}
	}
	if err := c.Leaf.CheckSignatureFrom(ca); err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: the node certificate is not signed by the CA: %w", ErrBadCA, err)
	}
	if last := c.Certificate[len(c.Certificate)-1]; !bytes.Equal(last, ca.Raw) {
		c.Certificate = append(c.Certificate, ca.Raw)
	}
	return c, nil
}

// errNoCertificate reports a peer that sent no certificate where one is
// needed.
var errNoCertificate = errors.New("pki: the peer sent no certificate")

// verifyChain checks that the first of certs chains to pool with the
// others as intermediates, for usage. Host names are not checked.
func verifyChain(certs []*x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(certs) == 0 {
		return errNoCertificate
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	return err
}

// ServerConfig is the server side of the cluster port. It presents cert
// and requests, without requiring, a client certificate: a client that
// sends one must verify against pool (for client use) or the handshake
// fails; a client that sends none (a node that enrolls) completes the
// handshake, and the caller decides per channel with PeerNodeID.
func ServerConfig(cert tls.Certificate, pool *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   minTLS,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			return verifyChain(cs.PeerCertificates, pool, x509.ExtKeyUsageClientAuth)
		},
	}
}

// ClientConfig is the client side of the cluster port for a member: it
// presents cert and accepts a server whose chain verifies against pool
// (for server use), whatever its host name.
func ClientConfig(cert tls.Certificate, pool *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   minTLS,
		Certificates: []tls.Certificate{cert},
		// Host names are not checked: VerifyConnection checks the chain
		// against the cluster CA instead.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyChain(cs.PeerCertificates, pool, x509.ExtKeyUsageServerAuth)
		},
	}
}

// PinnedConfig is the client side of the cluster port for a node that
// enrolls with a join token: it presents no certificate and accepts a
// server only if the chain it sends holds a CA certificate whose
// Fingerprint is fingerprint and the leaf verifies against that CA (for
// server use). Otherwise the handshake fails with an error wrapping
// ErrFingerprint. The server must send its chain with the CA (see
// Certificate).
func PinnedConfig(fingerprint [32]byte) *tls.Config {
	return &tls.Config{
		MinVersion: minTLS,
		// Host names are not checked: VerifyConnection checks the chain
		// against the pinned CA instead.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates {
				if !c.IsCA || Fingerprint(c.Raw) != fingerprint {
					continue
				}
				pool := x509.NewCertPool()
				pool.AddCert(c)
				if err := verifyChain(cs.PeerCertificates, pool, x509.ExtKeyUsageServerAuth); err != nil {
					return fmt.Errorf("%w: %w", ErrFingerprint, err)
				}
				return nil
			}
			return fmt.Errorf("%w: no such CA certificate in the server's chain", ErrFingerprint)
		},
	}
}

// PeerNodeID returns the node id of the peer of a connection (the common
// name of its certificate) when its first certificate verifies against
// pool, for any usage; false when it sent no certificate or it does not
// verify. Servers call it after the handshake.
func PeerNodeID(cs tls.ConnectionState, pool *x509.CertPool) (string, bool) {
	if verifyChain(cs.PeerCertificates, pool, x509.ExtKeyUsageAny) != nil {
		return "", false
	}
	return NodeID(cs.PeerCertificates[0]), true
}
