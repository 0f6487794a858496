package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := NewCA(name, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t testing.TB, ca *CA, id string) (certPEM, keyPEM []byte) {
	t.Helper()
	c, k, err := ca.Issue(id, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func tlsCert(t testing.TB, ca *CA, id string) tls.Certificate {
	t.Helper()
	c, k := issue(t, ca, id)
	cert, err := Certificate(c, k, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func parsePEM(t testing.TB, p []byte) *x509.Certificate {
	t.Helper()
	c, err := parseCertPEM(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCA(t *testing.T) {
	ca := newCA(t, "cluster")
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || !c.MaxPathLenZero || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA template: IsCA %v, constraints %v, pathlen0 %v, usage %v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLenZero, c.KeyUsage)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v", c.SerialNumber)
	}
	if time.Until(c.NotBefore) > -59*time.Minute {
		t.Errorf("NotBefore %v is not an hour back", c.NotBefore)
	}
	if b, _ := pem.Decode(ca.KeyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Error("the key is not PKCS#8 PEM")
	}

	back, err := LoadCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if back.Fingerprint() != ca.Fingerprint() || Fingerprint(ca.Cert.Raw) != ca.Fingerprint() {
		t.Error("fingerprint changed across PEM")
	}
	if !bytes.Equal(back.CertPEM, ca.CertPEM) || !bytes.Equal(back.KeyPEM, ca.KeyPEM) {
		t.Error("PEM changed across LoadCA")
	}
	// The loaded CA signs certificates the original's pool accepts.
	leafPEM, _ := issue(t, back, "n1")
	if _, err := parsePEM(t, leafPEM).Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Error(err)
	}

	other := newCA(t, "other")
	_, err = LoadCA(ca.CertPEM, other.KeyPEM)
	if !errors.Is(err, ErrBadCA) {
		t.Errorf("mismatched key: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "PRIVATE") {
		t.Errorf("the error shows key material: %v", err)
	}
	_, leafKey := issue(t, ca, "n1")
	if _, err := LoadCA(leafPEM, leafKey); !errors.Is(err, ErrBadCA) {
		t.Errorf("a leaf as a CA: %v", err)
	}
	if _, err := LoadCA(ca.CertPEM, []byte("not a key")); !errors.Is(err, ErrBadCA) {
		t.Errorf("garbage key: %v", err)
	}
}

func TestSignCSR(t *testing.T) {
	ca := newCA(t, "cluster")
	now := time.Now()
	_, key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NewCSR("n1", key)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := ca.SignCSR(csr, "n2", now, time.Hour); !errors.Is(err, ErrBadCSR) {
		t.Errorf("a CSR for another id: %v", err)
	}
	// Tamper with the signed content: n1 becomes n2 and the id matches,
	// so only the signature check can refuse it.
	b, _ := pem.Decode(csr)
	der := bytes.Replace(b.Bytes, []byte("n1"), []byte("n2"), 1)
	tampered := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if _, err := ca.SignCSR(tampered, "n2", now, time.Hour); !errors.Is(err, ErrBadCSR) {
		t.Errorf("a tampered CSR: %v", err)
	}
	long := strings.Repeat("x", MaxNodeIDLen+1)
	lcsr, err := NewCSR(long, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.SignCSR(lcsr, long, now, time.Hour); !errors.Is(err, ErrBadCSR) {
		t.Errorf("a %d-byte id: %v", len(long), err)
	}
	ecsr, _ := NewCSR("", key)
	if _, err := ca.SignCSR(ecsr, "", now, time.Hour); !errors.Is(err, ErrBadCSR) {
		t.Errorf("an empty id: %v", err)
	}
	if _, err := ca.SignCSR([]byte("junk"), "n1", now, time.Hour); !errors.Is(err, ErrBadCSR) {
		t.Errorf("junk: %v", err)
	}

	// The longest id passes, and an id needing escapes lands escaped in
	// the URI SAN.
	for _, id := range []string{strings.Repeat("y", MaxNodeIDLen), "n1", "a/b c%"} {
		c, _ := NewCSR(id, key)
		certPEM, err := ca.SignCSR(c, id, now, time.Hour)
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		cert := parsePEM(t, certPEM)
		if NodeID(cert) != id {
			t.Errorf("NodeID = %q, want %q", NodeID(cert), id)
		}
		want := "herald://node/" + url.PathEscape(id)
		if len(cert.URIs) != 1 || cert.URIs[0].String() != want {
			t.Errorf("URI SANs %v, want %s", cert.URIs, want)
		}
		if cert.IsCA || cert.KeyUsage != x509.KeyUsageDigitalSignature || len(cert.ExtKeyUsage) != 2 {
			t.Errorf("leaf template: IsCA %v, usage %v, ext %v", cert.IsCA, cert.KeyUsage, cert.ExtKeyUsage)
		}
		if !cert.NotBefore.Equal(now.Add(-time.Hour).Truncate(time.Second)) || !cert.NotAfter.Equal(now.Add(time.Hour).Truncate(time.Second)) {
			t.Errorf("validity %v to %v", cert.NotBefore, cert.NotAfter)
		}
	}

	// Validity past the CA's end stops at it.
	certPEM, err := ca.SignCSR(csr, "n1", now, 1000*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := parsePEM(t, certPEM).NotAfter; !got.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter %v, want the CA's %v", got, ca.Cert.NotAfter)
	}
	// An expired CA issues nothing.
	if _, err := ca.SignCSR(csr, "n1", ca.Cert.NotAfter.Add(time.Minute), time.Hour); !errors.Is(err, ErrBadCA) {
		t.Errorf("expired CA: %v", err)
	}
}

func TestVerify(t *testing.T) {
	ca, other := newCA(t, "cluster"), newCA(t, "other")
	mine, _ := issue(t, ca, "n1")
	theirs, _ := issue(t, other, "n1")
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if err := verifyChain([]*x509.Certificate{parsePEM(t, mine)}, ca.Pool(), usage); err != nil {
			t.Errorf("own CA, usage %v: %v", usage, err)
		}
		if err := verifyChain([]*x509.Certificate{parsePEM(t, theirs)}, ca.Pool(), usage); err == nil {
			t.Errorf("another CA's certificate verified for usage %v", usage)
		}
	}

	// Certificate appends the CA and refuses a CA that did not sign.
	c, k := issue(t, ca, "n1")
	cert, err := Certificate(c, k, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[1], ca.Cert.Raw) || cert.Leaf == nil || NodeID(cert.Leaf) != "n1" {
		t.Errorf("chain of %d, leaf %v", len(cert.Certificate), cert.Leaf != nil)
	}
	if _, err := Certificate(c, k, other.CertPEM); !errors.Is(err, ErrBadCA) {
		t.Errorf("the wrong CA: %v", err)
	}
	_, k2 := issue(t, ca, "n2")
	if _, err := Certificate(c, k2, ca.CertPEM); err == nil {
		t.Error("a key of another certificate was accepted")
	}
}

// handshake runs one TLS handshake between server and client over a
// 127.0.0.1 connection and returns each side's error and the server's
// connection state. The client also reads one byte the server sends after
// its handshake: in TLS 1.3 a client learns there that the server refused
// its certificate.
func handshake(t *testing.T, server, client *tls.Config) (srvErr, cliErr error, cs tls.ConnectionState) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			srvErr = err
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(conn, server)
		if srvErr = tc.Handshake(); srvErr == nil {
			cs = tc.ConnectionState()
			_, srvErr = tc.Write([]byte{1})
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(conn, client)
	if cliErr = tc.Handshake(); cliErr == nil {
		var b [1]byte
		_, cliErr = tc.Read(b[:])
	}
	conn.Close()
	<-done
	return srvErr, cliErr, cs
}

func TestMutualTLS(t *testing.T) {
	ca, other := newCA(t, "cluster"), newCA(t, "other")
	pool := ca.Pool()
	server := ServerConfig(tlsCert(t, ca, "s1"), pool)

	se, ce, cs := handshake(t, server, ClientConfig(tlsCert(t, ca, "n1"), pool))
	if se != nil || ce != nil {
		t.Fatalf("same CA: server %v, client %v", se, ce)
	}
	if id, ok := PeerNodeID(cs, pool); !ok || id != "n1" {
		t.Errorf("PeerNodeID = %q, %v; want n1", id, ok)
	}
	if _, ok := PeerNodeID(cs, other.Pool()); ok {
		t.Error("PeerNodeID accepted the client against another CA's pool")
	}

	// A client with a certificate of another CA (which trusts this
	// server) is refused by the server.
	if se, ce, _ := handshake(t, server, ClientConfig(tlsCert(t, other, "x"), pool)); se == nil || ce == nil {
		t.Errorf("another CA's client: server %v, client %v", se, ce)
	}

	// A member does not accept a server of another CA.
	if _, ce, _ := handshake(t, ServerConfig(tlsCert(t, other, "s"), other.Pool()), ClientConfig(tlsCert(t, ca, "n1"), pool)); ce == nil {
		t.Error("the client accepted a server of another CA")
	}

	// A client without a certificate completes the handshake but is no
	// member.
	anon := &tls.Config{InsecureSkipVerify: true}
	se, ce, cs = handshake(t, server, anon)
	if se != nil || ce != nil {
		t.Fatalf("no client certificate: server %v, client %v", se, ce)
	}
	if id, ok := PeerNodeID(cs, pool); ok {
		t.Errorf("a client without a certificate is member %q", id)
	}
}

func TestPinnedConfig(t *testing.T) {
	ca, other := newCA(t, "cluster"), newCA(t, "other")
	server := ServerConfig(tlsCert(t, ca, "s1"), ca.Pool())

	se, ce, cs := handshake(t, server, PinnedConfig(ca.Fingerprint()))
	if se != nil || ce != nil {
		t.Fatalf("right pin: server %v, client %v", se, ce)
	}
	if _, ok := PeerNodeID(cs, ca.Pool()); ok {
		t.Error("an enrolling client counts as a member")
	}

	if _, ce, _ := handshake(t, server, PinnedConfig(other.Fingerprint())); !errors.Is(ce, ErrFingerprint) {
		t.Errorf("wrong pin: %v", ce)
	}

	// A server that sends the pinned CA but a leaf of another CA.
	c, k := issue(t, other, "s1")
	forged, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	forged.Certificate = append(forged.Certificate, ca.Cert.Raw)
	if _, ce, _ := handshake(t, ServerConfig(forged, ca.Pool()), PinnedConfig(ca.Fingerprint())); !errors.Is(ce, ErrFingerprint) {
		t.Errorf("the pinned CA with a foreign leaf: %v", ce)
	}

	// A server that sends no CA in its chain.
	bare := tlsCert(t, ca, "s1")
	bare.Certificate = bare.Certificate[:1]
	if _, ce, _ := handshake(t, ServerConfig(bare, ca.Pool()), PinnedConfig(ca.Fingerprint())); !errors.Is(ce, ErrFingerprint) {
		t.Errorf("a chain without the CA: %v", ce)
	}
}

func TestToken(t *testing.T) {
	fp := newCA(t, "cluster").Fingerprint()
	tok, err := NewToken(fp)
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	if !strings.HasPrefix(s, "hjt_") {
		t.Fatalf("%q lacks the prefix", s)
	}
	back, err := ParseToken(s)
	if err != nil || back != tok {
		t.Fatalf("round trip: %v", err)
	}
	if back.Fingerprint != fp {
		t.Error("fingerprint lost")
	}
	if tok.SecretHash() != HashSecret(tok.Secret) || tok.SecretHash() == tok.Secret {
		t.Error("SecretHash")
	}
	again, _ := NewToken(fp)
	if again.Secret == tok.Secret {
		t.Error("two tokens share a secret")
	}

	body := strings.TrimPrefix(s, "hjt_")
	payload, _ := base64.RawURLEncoding.DecodeString(body)
	v2 := append([]byte{2}, payload[1:]...)
	last := body[len(body)-1]
	// The last character's two low bits are padding and must be zero:
	// flipping the lowest gives another character (or an invalid one).
	nonCanonical := body[:len(body)-1] + string(rune(last+1))
	bad := map[string]string{
		"empty":          "",
		"no prefix":      body,
		"wrong prefix":   "hjx_" + body,
		"upper prefix":   "HJT_" + body,
		"short":          "hjt_" + body[:len(body)-1],
		"long":           "hjt_" + body + "A",
		"much longer":    "hjt_" + body + body,
		"bad base64":     "hjt_" + "!" + body[1:],
		"std alphabet":   "hjt_" + "+" + body[1:],
		"padded":         "hjt_" + body[:len(body)-1] + "=",
		"newline":        "hjt_" + body[:40] + "\n" + body[40:len(body)-1],
		"space around":   " " + s,
		"trailing nl":    s + "\n",
		"version 2":      "hjt_" + base64.RawURLEncoding.EncodeToString(v2),
		"non-canonical":  "hjt_" + nonCanonical,
		"version 1 only": "hjt_AQ",
	}
	for name, in := range bad {
		_, err := ParseToken(in)
		if !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: parsed (%v)", name, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, body[:16]) || strings.Contains(msg, body[len(body)-16:]) || (len(in) > 4 && strings.Contains(msg, in)) {
			t.Errorf("%s: the error repeats the input: %s", name, msg)
		}
	}
}

func TestFiles(t *testing.T) {
	ca := newCA(t, "cluster")
	c, k := issue(t, ca, "n1")
	dir := filepath.Join(t.TempDir(), "data", "tls")

	if _, err := ReadFiles(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no dir: %v", err)
	}
	if err := WriteFiles(dir, Files{CACert: ca.CertPEM}); !errors.Is(err, ErrBadFiles) {
		t.Errorf("no node certificate: %v", err)
	}
	want := Files{CACert: ca.CertPEM, CAKey: ca.KeyPEM, NodeCert: c, NodeKey: k}
	if err := WriteFiles(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.CACert, want.CACert) || !bytes.Equal(got.CAKey, want.CAKey) || !bytes.Equal(got.NodeCert, want.NodeCert) || !bytes.Equal(got.NodeKey, want.NodeKey) {
		t.Error("round trip changed the files")
	}
	modes := map[string]os.FileMode{"ca.key": 0o600, "node.key": 0o600, "ca.crt": 0o644, "node.crt": 0o644}
	for name, mode := range modes {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dir: %v %v", st.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("%d entries in the dir, want 4 (no temp files)", len(entries))
	}

	// Rewriting replaces the files.
	c2, k2 := issue(t, ca, "n1")
	if err := WriteFiles(dir, Files{CACert: ca.CertPEM, NodeCert: c2, NodeKey: k2}); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFiles(dir); err != nil || !bytes.Equal(got.NodeKey, k2) || !bytes.Equal(got.CAKey, ca.KeyPEM) {
		t.Errorf("rewrite: %v", err)
	}

	// Without ca.key: a node given only the CA certificate.
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFiles(dir); err != nil || got.CAKey != nil || got.NodeCert == nil {
		t.Errorf("without ca.key: CAKey %v, %v", got.CAKey != nil, err)
	}

	// node.crt without node.key is damage, not a node without files.
	if err := os.Remove(filepath.Join(dir, "node.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFiles(dir); !errors.Is(err, ErrBadFiles) || errors.Is(err, os.ErrNotExist) {
		t.Errorf("without node.key: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "node.crt")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFiles(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("without node.crt: %v", err)
	}
}

func FuzzParseToken(f *testing.F) {
	tok, err := NewToken([32]byte{7})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok.String())
	f.Add(Token{}.String())
	f.Add("hjt_")
	f.Add("hjt_AQ")
	f.Add("hjt_" + strings.Repeat("A", 87))
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("error %v does not wrap ErrBadToken", err)
			}
			if len(s) > len(TokenPrefix)+8 && strings.Contains(err.Error(), s) {
				t.Fatalf("the error repeats the input")
			}
			return
		}
		if got := tk.String(); got != s {
			t.Fatalf("%q parsed but encodes as %q", s, got)
		}
	})
}
