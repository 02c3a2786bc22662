package mailu

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// ErrHashMalformed: MailU returned a password hash that names a scheme
// this package reads (bcrypt_sha256 or bcrypt) but does not follow it, or
// no hash at all. Nothing can be concluded from it.
var ErrHashMalformed = errors.New("mailu: malformed password hash")

// PasswordHash is a user's password hash as MailU's GET /user/{email}
// returns it. Checking a candidate against it answers which password
// MailU holds without a login, so MailU's limiter spends nothing on it.
// The value is kept out of fmt and slog output: it is password material.
type PasswordHash struct{ h string }

// ParsePasswordHash wraps a hash string from MailU.
func ParsePasswordHash(s string) PasswordHash { return PasswordHash{h: s} }

// The forms MailU 2024.06 stores (passlib's CryptContext with
// bcrypt_sha256 as default; core/admin/mailu/models.py), read here:
//
//	$bcrypt-sha256$v=2,t=2b,r=12$<salt>$<digest>   passlib >= 1.7.3: bcrypt of base64(HMAC-SHA256(key=salt, password))
//	$bcrypt-sha256$2b,12$<salt>$<digest>           passlib < 1.7.3:  bcrypt of base64(SHA256(password))
//	$2b$12$<salt><digest> (also $2a$, $2y$)        plain bcrypt of the password
//
// optionally behind a Dovecot-style "{BLF-CRYPT}" or "{CRYPT}" prefix,
// which MailU strips too. salt is 22 and digest 31 characters of bcrypt's
// base64 alphabet.
var (
	bcryptSHA256V2 = regexp.MustCompile(`^\$bcrypt-sha256\$v=2,t=(2b),r=([0-9]{1,2})\$([./A-Za-z0-9]{22})\$([./A-Za-z0-9]{31})$`)
	bcryptSHA256V1 = regexp.MustCompile(`^\$bcrypt-sha256\$(2[ab]),([0-9]{1,2})\$([./A-Za-z0-9]{22})\$([./A-Za-z0-9]{31})$`)
	plainBcrypt    = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)
)

// Matches reports whether password is the one the hash was made from.
//
// A hash in a scheme MailU never writes for a password set through its
// API (every such password is hashed with bcrypt_sha256, and MailU
// re-hashes any other scheme on the next successful login) matches no
// password this project set: Matches answers false, without error. A
// hash that claims bcrypt_sha256 or bcrypt but is malformed, or an empty
// one, is ErrHashMalformed: the caller must not decide on it.
func (p PasswordHash) Matches(password string) (bool, error) {
	h := p.h
	for _, prefix := range []string{"{BLF-CRYPT}", "{CRYPT}"} {
		h = strings.TrimPrefix(h, prefix)
	}
	if password == "" {
		return false, nil // MailU never accepts an empty password
	}
	switch {
	case h == "":
		return false, fmt.Errorf("%w: MailU returned no password hash (the admin API of MailU 2024.06 or later does)", ErrHashMalformed)
	case strings.HasPrefix(h, "$bcrypt-sha256$"):
		if m := bcryptSHA256V2.FindStringSubmatch(h); m != nil {
			mac := hmac.New(sha256.New, []byte(m[3]))
			mac.Write([]byte(password))
			return bcryptMatches("$2b$"+twoDigits(m[2])+"$"+m[3]+m[4], base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		}
		if m := bcryptSHA256V1.FindStringSubmatch(h); m != nil {
			sum := sha256.Sum256([]byte(password))
			return bcryptMatches("$"+m[1]+"$"+twoDigits(m[2])+"$"+m[3]+m[4], base64.StdEncoding.EncodeToString(sum[:]))
		}
		return false, fmt.Errorf("%w: not a bcrypt_sha256 hash of version 1 or 2", ErrHashMalformed)
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		if !plainBcrypt.MatchString(h) {
			return false, fmt.Errorf("%w: not a bcrypt hash", ErrHashMalformed)
		}
		if len(password) > 72 {
			// bcrypt reads 72 bytes at most; MailU's passlib truncates
			// and x/crypto refuses. This project's passwords are shorter.
			password = password[:72]
		}
		return bcryptMatches(h, password)
	default:
		return false, nil
	}
}

// bcryptMatches compares key against a "$2x$NN$salt+digest" hash.
func bcryptMatches(hash, key string) (bool, error) {
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(key))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("%w: %w", ErrHashMalformed, err)
	}
}

// twoDigits writes passlib's rounds ("5") as bcrypt's cost field ("05").
func twoDigits(r string) string {
	if len(r) == 1 {
		return "0" + r
	}
	return r
}

// String keeps the hash out of %v and %s.
func (p PasswordHash) String() string { return "[password hash]" }

// GoString keeps the hash out of %#v.
func (p PasswordHash) GoString() string { return p.String() }

// LogValue keeps the hash out of slog records.
func (p PasswordHash) LogValue() slog.Value { return slog.StringValue(p.String()) }

// PasswordHash reads a user's password hash (GET /user/{email}, its
// "password" field). ErrNotFound when there is no such user. Unlike a
// login, it spends nothing of MailU's rate limits beyond the API's own
// IP check, which a valid token passes.
func (c *Client) PasswordHash(ctx context.Context, email string) (PasswordHash, error) {
	if email == "" {
		return PasswordHash{}, fmt.Errorf("mailu: get password hash: %w", errNoEmail)
	}
	var u struct {
		Password string `json:"password"`
	}
	if err := c.do(ctx, "GET", userPath(email), nil, &u, ""); err != nil {
		return PasswordHash{}, fmt.Errorf("mailu: get password hash of %s: %w", email, err)
	}
	return PasswordHash{h: u.Password}, nil
}
