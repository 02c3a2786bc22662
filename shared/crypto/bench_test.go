package crypto_test

import (
	"crypto/sha256"
	"testing"

	"golang.org/x/crypto/pbkdf2"

	"smtp-vault/shared/crypto"
)

// BenchmarkSealOpen is the cost this package adds per stored password.
func BenchmarkSealOpen(b *testing.B) {
	key := testKey(1)
	aad := crypto.AAD(tenantA, "password")
	pw := []byte(password44)
	for b.Loop() {
		stored, err := crypto.Seal(key, pw, aad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := crypto.Open(key, stored, aad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPBKDF2SHA256_100k is what the seed's PBKDF2 (100,000 iterations)
// would have added per derivation; kept for comparison only (see package doc).
func BenchmarkPBKDF2SHA256_100k(b *testing.B) {
	secret := testKey(1)
	salt := []byte(tenantA)
	for b.Loop() {
		_ = pbkdf2.Key(secret, salt, 100_000, 32, sha256.New)
	}
}

// BenchmarkSeal and BenchmarkOpen are what one request pays: a store seals
// once with a fresh data key, a retrieve opens once. Each includes the key
// setup (AES schedule and GCM tables), which dominates.
func BenchmarkSeal(b *testing.B) {
	key := testKey(1)
	aad := crypto.AAD(tenantA, "password")
	pw := []byte(password44)
	for b.Loop() {
		if _, err := crypto.Seal(key, pw, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	key := testKey(1)
	aad := crypto.AAD(tenantA, "password")
	stored, err := crypto.Seal(key, []byte(password44), aad)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := crypto.Open(key, stored, aad); err != nil {
			b.Fatal(err)
		}
	}
}
