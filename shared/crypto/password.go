package crypto

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// NewPassword returns nBytes from crypto/rand, base64 encoded (standard
// encoding, padded): 32 bytes give 44 characters, 48 bytes give 64.
func NewPassword(nBytes int) (string, error) {
	if nBytes <= 0 {
		return "", errors.New("crypto: password length must be positive")
	}
	b := make([]byte, nBytes)
	defer Wipe(b)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("crypto: reading random password: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Wipe zeroes b, which held a key or a plaintext. Go cannot guarantee that no
// other copy exists (the garbage collector may have moved the data, and
// strings cannot be wiped at all); wiping only shortens the time a secret
// stays in memory.
func Wipe(b []byte) {
	clear(b)
}
