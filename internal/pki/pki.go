package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/herald-io/herald/internal/fsutil"
)

// Errors of this package. Functions wrap them with %w and add context;
// the context never holds key or secret material.
var (
	// ErrBadCA reports a CA certificate or key that cannot be used.
	ErrBadCA = errors.New("pki: bad CA")
	// ErrBadCSR reports a certificate request that is malformed, badly
	// signed or names another node, or a node id out of bounds.
	ErrBadCSR = errors.New("pki: bad certificate request")
	// ErrFingerprint reports a server whose chain holds no CA certificate
	// with the pinned fingerprint, or a leaf that CA did not sign.
	ErrFingerprint = errors.New("pki: the server's CA does not match the pinned fingerprint")
	// ErrBadToken reports a malformed join token.
	ErrBadToken = errors.New("pki: malformed join token")
	// ErrBadFiles reports a TLS directory that holds a node certificate but
	// not the other files that go with it, or Files missing a required
	// file.
	ErrBadFiles = errors.New("pki: incomplete TLS files")
)

// MaxNodeIDLen is the longest node id, in bytes, that a node certificate
// may carry.
const MaxNodeIDLen = 64

// PEM block types.
const (
	pemCert = "CERTIFICATE"
	pemKey  = "PRIVATE KEY"
	pemCSR  = "CERTIFICATE REQUEST"
)

// CA is the cluster's certificate authority: its certificate and its key,
// each parsed and as PEM.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     crypto.Signer
	KeyPEM  []byte // PKCS#8 "PRIVATE KEY"
}

// randomSerial returns a random 128-bit certificate serial number.
func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// NewCA creates a self-signed CA with a new ECDSA P-256 key, valid from an
// hour before now (clock skew between nodes) until now+validity. It signs
// node certificates only: its path length is zero.
func NewCA(commonName string, now time.Time, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("%w: validity must be positive", ErrBadCA)
	}
	keyPEM, key, err := NewKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return LoadCA(pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der}), keyPEM)
}

// LoadCA parses a CA certificate and its PKCS#8 key from PEM. It refuses
// (ErrBadCA) a certificate that is not a CA's and a key that is not the
// certificate's. The CA's CertPEM and KeyPEM are the first blocks of the
// inputs, re-encoded.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCA, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%w: the certificate is not a CA certificate", ErrBadCA)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != pemKey {
		return nil, fmt.Errorf("%w: no PEM %q block in the key", ErrBadCA, pemKey)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		// The parser's message says what is wrong, not what the key is.
		return nil, fmt.Errorf("%w: key: %w", ErrBadCA, err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: the key cannot sign", ErrBadCA)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil || !bytes.Equal(pub, cert.RawSubjectPublicKeyInfo) {
		return nil, fmt.Errorf("%w: the key does not belong to the certificate", ErrBadCA)
	}
	return &CA{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: cert.Raw}),
		Key:     key,
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: block.Bytes}),
	}, nil
}

// parseCertPEM parses the first PEM block of p as a certificate.
func parseCertPEM(p []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(p)
	if block == nil || block.Type != pemCert {
		return nil, fmt.Errorf("no PEM %q block", pemCert)
	}
	return x509.ParseCertificate(block.Bytes)
}

// Fingerprint returns the SHA-256 of a certificate's DER encoding.
func Fingerprint(certDER []byte) [32]byte { return sha256.Sum256(certDER) }

// Fingerprint returns the SHA-256 of the CA certificate's DER encoding:
// the value a join token carries.
func (ca *CA) Fingerprint() [32]byte { return Fingerprint(ca.Cert.Raw) }

// Pool returns a new certificate pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// NewKey creates an ECDSA P-256 key and returns it with its PKCS#8 PEM
// encoding ("PRIVATE KEY").
func NewKey() (keyPEM []byte, key crypto.Signer, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: der}), k, nil
}

// NewCSR creates a PEM certificate request for nodeID (its common name),
// signed by key.
func NewCSR(nodeID string, key crypto.Signer) (csrPEM []byte, err error) {
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: nodeID}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), nil
}

// nodeURI is the URI SAN of nodeID's certificate:
// herald://node/<url.PathEscape(nodeID)>.
func nodeURI(nodeID string) (*url.URL, error) {
	return url.Parse("herald://node/" + url.PathEscape(nodeID))
}

// SignCSR checks a PEM certificate request and issues the PEM certificate
// of node nodeID for it. The request must be well signed and name nodeID
// as its common name; nodeID must be 1 to MaxNodeIDLen bytes (ErrBadCSR
// otherwise). The certificate is for both server and client use, carries
// nodeID as its common name and as the URI SAN herald://node/<escaped id>,
// and is valid from an hour before now until now+validity, or until the
// CA expires if that is sooner.
func (ca *CA) SignCSR(csrPEM []byte, nodeID string, now time.Time, validity time.Duration) (certPEM []byte, err error) {
	if nodeID == "" || len(nodeID) > MaxNodeIDLen {
		return nil, fmt.Errorf("%w: the node id must be 1 to %d bytes", ErrBadCSR, MaxNodeIDLen)
	}
	if ca.Key == nil {
		return nil, fmt.Errorf("%w: no CA key", ErrBadCA)
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != pemCSR {
		return nil, fmt.Errorf("%w: no PEM %q block", ErrBadCSR, pemCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrBadCSR, err)
	}
	if csr.Subject.CommonName != nodeID {
		return nil, fmt.Errorf("%w: it names another node", ErrBadCSR)
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("%w: no validity left (the CA has expired or validity is not positive)", ErrBadCA)
	}
	uri, err := nodeURI(nodeID)
	if err != nil {
		return nil, fmt.Errorf("%w: node id: %w", ErrBadCSR, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeID},
		URIs:         []*url.URL{uri},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der}), nil
}

// Issue creates a key for nodeID and issues its certificate in one step
// (NewKey, NewCSR and SignCSR).
func (ca *CA) Issue(nodeID string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	keyPEM, key, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	csr, err := NewCSR(nodeID, key)
	if err != nil {
		return nil, nil, err
	}
	certPEM, err = ca.SignCSR(csr, nodeID, now, validity)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// NodeID returns the node id a node certificate names: its common name.
func NodeID(cert *x509.Certificate) string { return cert.Subject.CommonName }

// File names in a node's TLS directory.
const (
	caCertFile   = "ca.crt"
	caKeyFile    = "ca.key"
	nodeCertFile = "node.crt"
	nodeKeyFile  = "node.key"
)

// Files are the PEM files of a node's TLS directory (DATA/tls): ca.crt,
// ca.key, node.crt and node.key. CAKey is nil for a node given only the
// CA certificate.
type Files struct{ CACert, CAKey, NodeCert, NodeKey []byte }

// ReadFiles reads the files of dir. It returns an error wrapping
// os.ErrNotExist when node.crt is missing (the node has no certificate
// yet), and one wrapping ErrBadFiles, not os.ErrNotExist, when node.crt is
// there but node.key or ca.crt is not. CAKey is nil when ca.key is
// missing.
func ReadFiles(dir string) (Files, error) {
	var f Files
	var err error
	if f.NodeCert, err = os.ReadFile(filepath.Join(dir, nodeCertFile)); err != nil {
		return Files{}, err
	}
	for _, x := range []struct {
		name string
		dst  *[]byte
	}{{nodeKeyFile, &f.NodeKey}, {caCertFile, &f.CACert}} {
		*x.dst, err = os.ReadFile(filepath.Join(dir, x.name))
		if errors.Is(err, os.ErrNotExist) {
			return Files{}, fmt.Errorf("%w: %s has %s but no %s", ErrBadFiles, dir, nodeCertFile, x.name)
		}
		if err != nil {
			return Files{}, err
		}
	}
	f.CAKey, err = os.ReadFile(filepath.Join(dir, caKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return Files{}, err
	}
	return f, nil
}

// WriteFiles writes f into dir, creating it (0700) if need be. Each file
// is written to a new temporary file (keys 0600, certificates 0644),
// synced and renamed into place; then dir is synced. node.crt is written
// last, so that after a crash ReadFiles finds either all files or no
// node.crt. CACert, NodeCert and NodeKey are required (ErrBadFiles); a
// nil CAKey writes no ca.key (and leaves one already there alone).
func WriteFiles(dir string, f Files) error {
	if len(f.CACert) == 0 || len(f.NodeCert) == 0 || len(f.NodeKey) == 0 {
		return fmt.Errorf("%w: CA certificate, node certificate and node key are required", ErrBadFiles)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, x := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{caCertFile, f.CACert, 0o644},
		{caKeyFile, f.CAKey, 0o600},
		{nodeKeyFile, f.NodeKey, 0o600},
		{nodeCertFile, f.NodeCert, 0o644},
	} {
		if x.data == nil {
			continue
		}
		if err := writeFileAtomic(dir, x.name, x.data, x.mode); err != nil {
			return err
		}
	}
	return fsutil.SyncDir(dir)
}

// writeFileAtomic writes data to dir/name through a synced temporary
// file in dir, renamed into place.
func writeFileAtomic(dir, name string, data []byte, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp*") // created 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}
