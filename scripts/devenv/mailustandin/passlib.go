package mailustandin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/blowfish"
)

// MailU 2024.06 stores passwords with passlib's bcrypt_sha256, version 2
// (core/admin/mailu/models.py: the default scheme, CREDENTIAL_ROUNDS=12
// from configuration.py), and the admin API's GET /user/{email} returns
// that hash. The form is
//
//	$bcrypt-sha256$v=2,t=2b,r=<cost>$<salt>$<checksum>
//
// where salt is bcrypt's 22-character salt and checksum the 31 characters
// of bcrypt(cost, salt, key), key being the standard base64 (padded) of
// HMAC-SHA256 keyed with the salt's 22 characters over the password's
// UTF-8 bytes. The HMAC makes passwords of any length count in full.

// PasslibBcryptSHA256Vector is a hash of "password" from passlib's
// documentation, for tests of other implementations.
const PasslibBcryptSHA256Vector = "$bcrypt-sha256$v=2,t=2b,r=12$n79VH.0Q2TMWmt3Oqt9uku$Kq4Noyk3094Y2QlB8NdRT8SvGiI4ft2"

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

var bcryptB64 = base64.NewEncoding(bcryptAlphabet).WithPadding(base64.NoPadding)

var errNotBcryptSHA256 = errors.New("not a bcrypt_sha256 v2 hash")

// HashBcryptSHA256 hashes password as MailU 2024.06 does, with a fresh
// salt.
func HashBcryptSHA256(password string, cost int) (string, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("bcrypt cost %d out of range", cost)
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	// 16 bytes make 22 characters whose 4 unused bits are zero, as in
	// passlib's salts.
	salt := bcryptB64.EncodeToString(raw)
	sum, err := bcryptChecksum(prehashKey(salt, password), cost, salt)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$bcrypt-sha256$v=2,t=2b,r=%d$%s$%s", cost, salt, sum), nil
}

// CheckBcryptSHA256 reports whether password matches hash. It is false
// for anything that is not a version 2 bcrypt_sha256 hash.
func CheckBcryptSHA256(hash, password string) bool {
	cost, salt, sum, err := parseBcryptSHA256(hash)
	if err != nil {
		return false
	}
	// x/crypto's bcrypt recomputes with the salt of a standard hash.
	std := fmt.Sprintf("$2b$%02d$%s%s", cost, salt, sum)
	return bcrypt.CompareHashAndPassword([]byte(std), prehashKey(salt, password)) == nil
}

func parseBcryptSHA256(hash string) (cost int, salt, sum string, err error) {
	rest, ok := strings.CutPrefix(hash, "$bcrypt-sha256$v=2,t=2b,r=")
	if !ok {
		return 0, "", "", errNotBcryptSHA256
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 || len(parts[1]) != 22 || len(parts[2]) != 31 {
		return 0, "", "", errNotBcryptSHA256
	}
	if cost, err = strconv.Atoi(parts[0]); err != nil || cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return 0, "", "", errNotBcryptSHA256
	}
	return cost, parts[1], parts[2], nil
}

// prehashKey is what bcrypt_sha256 v2 feeds bcrypt: 44 bytes, whatever
// the password's length.
func prehashKey(salt, password string) []byte {
	m := hmac.New(sha256.New, []byte(salt))
	m.Write([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

// bcryptChecksum is bcrypt (the OpenBSD algorithm, as x/crypto/bcrypt
// computes it) with a given salt, which x/crypto does not let a caller
// choose: the expensive key schedule, then "OrpheanBeholderScryDoubt"
// encrypted 64 times, of which 23 bytes are kept.
func bcryptChecksum(key []byte, cost int, salt string) (string, error) {
	csalt, err := bcryptB64.DecodeString(salt)
	if err != nil || len(csalt) != 16 {
		return "", errNotBcryptSHA256
	}
	ckey := append(append([]byte{}, key...), 0) // C implementations hash the NUL too
	c, err := blowfish.NewSaltedCipher(ckey, csalt)
	if err != nil {
		return "", err
	}
	for range 1 << cost {
		blowfish.ExpandKey(ckey, c)
		blowfish.ExpandKey(csalt, c)
	}
	data := []byte("OrpheanBeholderScryDoubt")
	for i := 0; i < 24; i += 8 {
		for range 64 {
			c.Encrypt(data[i:i+8], data[i:i+8])
		}
	}
	return bcryptB64.EncodeToString(data[:23]), nil
}
