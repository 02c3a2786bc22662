package devissuer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"smtp-vault/shared/auth"
)

// DevIssuer issues tokens for local development (the local gateway and
// `make token`). It is never used in AWS, where the identity provider
// issues tokens and API Gateway verifies them.
type DevIssuer struct {
	issuer   string
	audience string
	key      jose.JSONWebKey // private, with kid
	signer   jose.Signer
	now      func() time.Time
}

// LoadOrCreateDevIssuer loads the signing key from path, a private JWK JSON
// file, or creates an RSA-2048 key there (mode 0600, written atomically) so
// that tokens survive restarts.
func LoadOrCreateDevIssuer(path, issuer, audience string) (*DevIssuer, error) {
	key, err := loadDevKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createDevKey(path)
	}
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: key}, // a JWK key puts its kid in the header
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("building dev signer: %w", err)
	}
	return &DevIssuer{issuer: issuer, audience: audience, key: key, signer: signer, now: time.Now}, nil
}

func loadDevKey(path string) (jose.JSONWebKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(b); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("reading dev signing key %s: %w", path, err)
	}
	if _, ok := key.Key.(*rsa.PrivateKey); !ok || key.KeyID == "" {
		return jose.JSONWebKey{}, fmt.Errorf("reading dev signing key %s: not an RSA private JWK with a kid", path)
	}
	return key, nil
}

// createDevKey writes a new key to a temporary file and links it into place,
// so a reader never sees half a key and two processes starting together
// agree on one key (the loser of the race loads the winner's).
func createDevKey(path string) (jose.JSONWebKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("generating dev signing key: %w", err)
	}
	key := jose.JSONWebKey{Key: priv, Algorithm: string(jose.RS256), Use: "sig"}
	pub := key.Public()
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("computing kid: %w", err)
	}
	key.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	b, err := key.MarshalJSON()
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("encoding dev signing key: %w", err)
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".devkey-*") // created 0600
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("writing dev signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeAndSync(tmp, b); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("writing dev signing key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadDevKey(path)
		}
		// Some file systems have no hard links; a rename is still atomic.
		if err := os.Rename(tmp.Name(), path); err != nil {
			return jose.JSONWebKey{}, fmt.Errorf("installing dev signing key: %w", err)
		}
	}
	return key, nil
}

func writeAndSync(f *os.File, b []byte) error {
	_, err := f.Write(b)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// JWKS returns the public half of the signing key, as an identity
// provider's jwks_uri serves it.
func (d *DevIssuer) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{d.key.Public()}}
}

// JWKSHandler serves JWKS as JSON, for a Verifier's JWKSURL.
func (d *DevIssuer) JWKSHandler() http.Handler {
	body, err := json.Marshal(d.JWKS())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if err != nil {
			http.Error(w, "encoding JWKS failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(body)
	})
}

// Sign issues a token for subject with the given roles, valid for ttl. The
// roles go in auth.DefaultRolesClaim as a JSON array.
func (d *DevIssuer) Sign(subject string, roles []auth.Role, ttl time.Duration) (string, error) {
	if subject == "" {
		return "", errors.New("signing dev token: empty subject")
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return d.SignClaims(subject, map[string]any{auth.DefaultRolesClaim: names}, ttl)
}

// SignClaims issues a token for subject with extra claims as given, for
// tests of how the functions read claims (a roles claim that is a string,
// say).
func (d *DevIssuer) SignClaims(subject string, extra map[string]any, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", errors.New("signing dev token: ttl must be positive")
	}
	now := d.now()
	std := jwt.Claims{
		Issuer:    d.issuer,
		Subject:   subject,
		Audience:  jwt.Audience{d.audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(ttl)),
		ID:        rand.Text(),
	}
	token, err := jwt.Signed(d.signer).Claims(std).Claims(extra).Serialize()
	if err != nil {
		return "", fmt.Errorf("signing dev token: %w", err)
	}
	return token, nil
}

// SetClock makes the issuer stamp tokens with now's time: a test stack
// whose functions run on a moved clock issues tokens valid on that clock.
func (d *DevIssuer) SetClock(now func() time.Time) {
	if now != nil {
		d.now = now
	}
}
