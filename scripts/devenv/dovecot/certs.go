package dovecot

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The front's TLS certificate comes from a local CA that this package
// creates once per folder and keeps there, so that clients configured
// with its PEM (make run's dev.env) keep trusting restarts. The server
// certificate is issued afresh at every start.

const (
	caFile        = "ca.pem"
	caKeyFile     = "ca-key.pem"
	certFile      = "server.pem"
	certKeyFile   = "server-key.pem"
	caLifetime    = 10 * 365 * 24 * time.Hour
	certLifetime  = 825 * 24 * time.Hour
	certNotBefore = time.Hour // issued "an hour ago": tolerates clock skew
)

// ensureCA loads the CA kept in dir, creating it the first time.
func ensureCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, errC := os.ReadFile(filepath.Join(dir, caFile))
	keyPEM, errK := os.ReadFile(filepath.Join(dir, caKeyFile))
	if errC == nil && errK == nil {
		cert, key, err := parsePair(certPEM, keyPEM)
		if err == nil && time.Now().Before(cert.NotAfter.Add(-30*24*time.Hour)) {
			return cert, key, nil
		}
	} else if !errors.Is(errC, os.ErrNotExist) && errC != nil {
		return nil, nil, errC
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "smtp-vault local MailU front CA"},
		NotBefore:             now.Add(-certNotBefore),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create the local CA: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePair(dir, caFile, caKeyFile, der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// issueServerCert writes a certificate for the loopback names, signed by
// the CA, into dir.
func issueServerCert(dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hostname string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hostname},
		DNSNames:     []string{"localhost", hostname},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2), net.IPv6loopback},
		NotBefore:    now.Add(-certNotBefore),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("issue the front's certificate: %w", err)
	}
	return writePair(dir, certFile, certKeyFile, der, key)
}

func writePair(dir, certName, keyName string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
