package mailu_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/mailu"
)

const (
	domain = "acme.test"
	admin  = "admin@acme.test"
	token  = "api-token-acme-0001"
)

// startMailU starts one stand-in MailU for acme.test and returns it with a
// client that holds the right token.
func startMailU(t *testing.T, opts mailustandin.Options) (*mailustandin.Instance, *mailu.Client) {
	t.Helper()
	opts.BcryptCost = bcrypt.MinCost
	s := mailustandin.NewServer(opts)
	t.Cleanup(func() { s.Close() })
	in, err := s.AddInstance(context.Background(), mailustandin.InstanceConfig{Domain: domain, APIToken: token})
	if err != nil {
		t.Fatal(err)
	}
	return in, mailu.New(in.APIURL(), token, nil)
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mail.acme.test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"mail.acme.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
