package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"

	"github.com/spf13/pflag"
)

// tlsFlags are a certificate, its key and the CA that signs the cluster's
// certificates.
type tlsFlags struct {
	cert, key, ca *string
}

func addTLSFlags(fs *pflag.FlagSet, prefix, what string) tlsFlags {
	return tlsFlags{
		cert: fs.String(prefix+"tls-cert", "", what+": this node's certificate (PEM)"),
		key:  fs.String(prefix+"tls-key", "", what+": its private key (PEM)"),
		ca:   fs.String(prefix+"tls-ca", "", what+": the CA certificate(s) that sign the cluster's certificates (PEM)"),
	}
}

// config builds a tls.Config, nil when no flag is set. mutual requires the
// CA (peers are verified both ways).
func (f tlsFlags) config(name string, mutual bool) (*tls.Config, error) {
	if *f.cert == "" && *f.key == "" && *f.ca == "" {
		return nil, nil
	}
	if *f.cert == "" || *f.key == "" {
		return nil, usagef("--%stls-cert and --%stls-key go together", name, name)
	}
	pair, err := tls.LoadX509KeyPair(*f.cert, *f.key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if *f.ca == "" {
		if mutual {
			return nil, usagef("--%stls-ca is required: Raft peers authenticate each other", name)
		}
		return cfg, nil // other nodes' certificates verified against the system roots
	}
	pem, err := os.ReadFile(*f.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New(*f.ca + ": no PEM certificate")
	}
	cfg.RootCAs, cfg.ClientCAs = pool, pool
	return cfg, nil
}
