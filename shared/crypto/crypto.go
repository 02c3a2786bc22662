// Package crypto seals and opens tenant secrets with AES-256-GCM, in the
// stored layout of the original Node.js implementation:
// base64(IV(16) || tag(16) || ciphertext).
//
// The data key comes from Vault Transit `datakey` on a derived key (HKDF
// inside Transit, with the tenant id as context); this package never talks
// to Vault and only seals and opens locally with the key it is given.
// PBKDF2 is not used: it stretches low-entropy passwords, while every key
// here is already high-entropy, so HKDF is the right derivation.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

const (
	// KeySize is the only accepted key length: AES-256.
	KeySize = 32
	// ivSize matches the seed's crypto.randomBytes(16); Go's GCM accepts a
	// non-standard nonce size only through NewGCMWithNonceSize.
	ivSize  = 16
	tagSize = 16
)

var (
	// ErrDecrypt is the only error Open returns for a stored value that does
	// not open: bad base64, too short, tampered, wrong key or wrong AAD. It
	// deliberately says nothing more, so callers cannot become an oracle.
	ErrDecrypt = errors.New("crypto: message authentication failed")

	// ErrKeySize is returned by Seal and Open when the key is not KeySize
	// bytes long. It signals a programming or configuration error.
	ErrKeySize = errors.New("crypto: key must be 32 bytes")
)

// encoding is strict so that a sealed value has exactly one accepted string
// form; Node.js emits the same canonical padded base64.
var encoding = base64.StdEncoding.Strict()

// Seal encrypts plaintext with key (exactly 32 bytes) under a fresh random
// 16-byte IV and binds it to aad, which must be given again to Open. It
// returns base64 (standard encoding) of IV || tag || ciphertext. The IV is
// random, so sealing the same input twice gives unrelated values.
//
// Seal does not retain plaintext or key; wiping them is the caller's job.
func Seal(key, plaintext, aad []byte) (string, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	// One buffer holds the stored layout IV || tag || ct. Go's Seal appends
	// ct || tag, so it writes after the tag's slot and the tag is moved
	// forward; the trailing copy of the tag is cut off.
	buf := make([]byte, ivSize+tagSize, ivSize+tagSize+len(plaintext)+tagSize)
	iv := buf[:ivSize]
	if _, err := rand.Read(iv); err != nil {
		return "", fmt.Errorf("crypto: reading random IV: %w", err)
	}
	out := gcm.Seal(buf[ivSize+tagSize:], iv, plaintext, aad)
	ctLen := len(out) - tagSize
	copy(buf[ivSize:ivSize+tagSize], out[ctLen:])
	return encoding.EncodeToString(buf[:ivSize+tagSize+ctLen]), nil
}

// Open authenticates and decrypts a value produced by Seal (or by the Node.js
// implementation) with key and the same aad. Any failure other than a bad key
// length is ErrDecrypt; the plaintext is returned only if authentic. The
// caller owns the returned slice and should Wipe it when done.
func Open(key []byte, stored string, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	raw, err := encoding.DecodeString(stored)
	if err != nil || len(raw) < ivSize+tagSize {
		return nil, ErrDecrypt
	}
	// Reorder IV || tag || ct into IV || ct || tag in place, as Go's Open
	// expects, and decrypt in place: raw is ours, so no caller memory is
	// touched.
	var tag [tagSize]byte
	copy(tag[:], raw[ivSize:ivSize+tagSize])
	body := raw[ivSize:]
	ctLen := copy(body, raw[ivSize+tagSize:])
	copy(body[ctLen:], tag[:])
	pt, err := gcm.Open(body[:0], raw[:ivSize], body, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// AAD returns the additional authenticated data that binds a sealed value to
// its tenant and field: the UTF-8 bytes of "<tenantID>/<field>". A value
// sealed for one tenant or field does not open under another.
func AAD(tenantID, field string) []byte {
	return []byte(tenantID + "/" + field)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, ErrKeySize
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("crypto: creating AES cipher: %w", err)
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, ivSize)
	if err != nil {
		return nil, fmt.Errorf("crypto: creating GCM: %w", err)
	}
	return gcm, nil
}
