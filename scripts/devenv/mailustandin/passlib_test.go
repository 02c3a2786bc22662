package mailustandin

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestBcryptSHA256 checks the hash against passlib's own example and
// against itself at bcrypt's least cost.
func TestBcryptSHA256(t *testing.T) {
	if !CheckBcryptSHA256(PasslibBcryptSHA256Vector, "password") {
		t.Fatal("passlib's example hash of \"password\" does not verify")
	}
	if CheckBcryptSHA256(PasslibBcryptSHA256Vector, "Password") {
		t.Fatal("passlib's example hash verifies another password")
	}
	// The checksum computed here, with the example's salt and cost, is
	// the example's.
	_, salt, sum, err := parseBcryptSHA256(PasslibBcryptSHA256Vector)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bcryptChecksum(prehashKey(salt, "password"), 12, salt)
	if err != nil || got != sum {
		t.Fatalf("checksum %q (%v), want %q", got, err, sum)
	}

	long := strings.Repeat("x", 100)
	for _, pw := range []string{"right-pw", "pässwörd", long + "a"} {
		h, err := HashBcryptSHA256(pw, bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "$bcrypt-sha256$v=2,t=2b,r=4$") || len(h) != len("$bcrypt-sha256$v=2,t=2b,r=4$")+22+1+31 {
			t.Fatalf("hash %q has not passlib's form", h)
		}
		if !CheckBcryptSHA256(h, pw) {
			t.Fatalf("hash of %q does not verify", pw)
		}
		if CheckBcryptSHA256(h, pw+"x") || CheckBcryptSHA256(h, "") {
			t.Fatalf("hash of %q verifies another password", pw)
		}
	}
	// Past bcrypt's 72 bytes the password still counts in full.
	h, _ := HashBcryptSHA256(long+"a", bcrypt.MinCost)
	if CheckBcryptSHA256(h, long+"b") {
		t.Fatal("a long password's last byte does not count")
	}
	for _, bad := range []string{"", "$2b$04$abcdefghijklmnopqrstuu", "$bcrypt-sha256$v=1,t=2b,r=12$n79VH.0Q2TMWmt3Oqt9uku$Kq4Noyk3094Y2QlB8NdRT8SvGiI4ft2",
		"$bcrypt-sha256$v=2,t=2b,r=99$n79VH.0Q2TMWmt3Oqt9uku$Kq4Noyk3094Y2QlB8NdRT8SvGiI4ft2", "$bcrypt-sha256$v=2,t=2b,r=12$short$Kq4Noyk3094Y2QlB8NdRT8SvGiI4ft2"} {
		if CheckBcryptSHA256(bad, "password") {
			t.Fatalf("%q verified", bad)
		}
	}
}

// TestLegacyHashUpgradedOnLogin: a hash the stand-in wrote before it
// modelled passlib still logs in, and is then replaced by a bcrypt_sha256
// one, as passlib's verify_and_update replaces MailU's outdated hashes.
func TestLegacyHashUpgradedOnLogin(t *testing.T) {
	e, in, _ := limitedEndpoint(t, DefaultAuthLimits())
	sum := sha256.Sum256([]byte("old-pw"))
	legacy, err := bcrypt.GenerateFromPassword([]byte(base64.StdEncoding.EncodeToString(sum[:])), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	in.mu.Lock()
	in.users["admin@acme.test"].PasswordHash = string(legacy)
	in.mu.Unlock()
	if got := e.ask("192.0.2.1", "admin@acme.test", "wrong"); got != "invalid" {
		t.Fatalf("wrong password against a legacy hash: %s", got)
	}
	if got := e.ask("192.0.2.1", "admin@acme.test", "old-pw"); got != "OK" {
		t.Fatalf("right password against a legacy hash: %s", got)
	}
	in.mu.Lock()
	h := in.users["admin@acme.test"].PasswordHash
	in.mu.Unlock()
	if !CheckBcryptSHA256(h, "old-pw") {
		t.Fatalf("hash not upgraded: %q", h)
	}
}
