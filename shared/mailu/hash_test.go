package mailu_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"smtp-vault/shared/mailu"
)

// Known vectors: passlib 1.7.4's own test suite (known_correct_hashes of
// bcrypt_sha256 and the OpenBSD bcrypt vector), and hashcat's example of
// mode 30601 at MailU's default cost of 12.
const upass = "t\u00e1\u0411\u2113\u0259" // passlib's UPASS_TABLE: UTF-8 input

var hashVectors = []struct {
	name, password, hash string
}{
	{"v2 ascii", "password", "$bcrypt-sha256$v=2,t=2b,r=5$5Hg1DKFqPE8C2aflZ5vVoe$wOK1VFFtS8IGTrGa7.h5fs0u84qyPbS"},
	{"v2 utf-8", upass, "$bcrypt-sha256$v=2,t=2b,r=5$.US1fQ4TQS.ZTz/uJ5Kyn.$pzzgp40k8reM1CuQb03PvE0IDPQSdV6"},
	{"v2 72 bytes", strings.Repeat("abc123", 12), "$bcrypt-sha256$v=2,t=2b,r=5$X1g1nh3g0v4h6970O68cxe$zu1cloESVFIOsUIo7fCEgkdHaI9SSue"},
	{"v2 past 72 bytes", strings.Repeat("abc123", 12) + "qwr", "$bcrypt-sha256$v=2,t=2b,r=5$X1g1nh3g0v4h6970O68cxe$CBF9csfEdW68xv3DwE6xSULXMtqEFP."},
	{"v2 cost 12 (hashcat)", "hashcat", "$bcrypt-sha256$v=2,t=2b,r=12$KSOjON/ciJR86a00N5q61.$AmWZucQuHk13FGkQWhgMeiFvBfm2GCy"},
	{"v1 2a", "password", "$bcrypt-sha256$2a,5$5Hg1DKFqPE8C2aflZ5vVoe$12BjNE0p7axMg55.Y/mHsYiVuFBDQyu"},
	{"v1 2b", "password", "$bcrypt-sha256$2b,5$5Hg1DKFqPE8C2aflZ5vVoe$12BjNE0p7axMg55.Y/mHsYiVuFBDQyu"},
	{"v1 utf-8", upass, "$bcrypt-sha256$2a,5$.US1fQ4TQS.ZTz/uJ5Kyn.$QNdPDOTKKT5/sovNz1iWg26quOU4Pje"},
	{"v1 past 72 bytes", strings.Repeat("abc123", 12) + "qwr", "$bcrypt-sha256$2b,5$X1g1nh3g0v4h6970O68cxe$021KLEif6epjot5yoxk0m8I0929ohEa"},
	{"plain 2a", "U*U*U*U*", "$2a$05$c92SVSfjeiCD6F2nAD6y0uBpJDjdRkt0EgeC4/31Rf2LUZbDRDE.O"},
	{"plain 2b", "U*U*U*U*", "$2b$05$c92SVSfjeiCD6F2nAD6y0uBpJDjdRkt0EgeC4/31Rf2LUZbDRDE.O"},
	{"plain 2y", "U*U*U*U*", "$2y$05$c92SVSfjeiCD6F2nAD6y0uBpJDjdRkt0EgeC4/31Rf2LUZbDRDE.O"},
	{"plain behind {BLF-CRYPT}", "U*U*U*U*", "{BLF-CRYPT}$2a$05$c92SVSfjeiCD6F2nAD6y0uBpJDjdRkt0EgeC4/31Rf2LUZbDRDE.O"},
}

func TestPasswordHashVectors(t *testing.T) {
	for _, v := range hashVectors {
		t.Run(v.name, func(t *testing.T) {
			h := mailu.ParsePasswordHash(v.hash)
			ok, err := h.Matches(v.password)
			if err != nil || !ok {
				t.Fatalf("Matches(right password) = %t, %v", ok, err)
			}
			for _, wrong := range []string{v.password + "x", strings.ToUpper(v.password) + "!", "pass"} {
				if ok, err := h.Matches(wrong); err != nil || ok {
					t.Errorf("Matches(%q) = %t, %v; want false", wrong, ok, err)
				}
			}
			if ok, err := h.Matches(""); err != nil || ok {
				t.Errorf("the empty password matched: %t, %v", ok, err)
			}
		})
	}
}

// TestPasswordHashV2IsNotV1: the two versions of bcrypt_sha256 pre-hash
// differently, so a v1 digest under a v2 header must not verify.
func TestPasswordHashV2IsNotV1(t *testing.T) {
	h := mailu.ParsePasswordHash("$bcrypt-sha256$v=2,t=2b,r=5$5Hg1DKFqPE8C2aflZ5vVoe$12BjNE0p7axMg55.Y/mHsYiVuFBDQyu")
	if ok, err := h.Matches("password"); ok || err != nil {
		t.Fatalf("a v1 digest verified as v2: %t, %v", ok, err)
	}
}

func TestPasswordHashMalformed(t *testing.T) {
	for name, h := range map[string]string{
		"empty":              "",
		"short digest":       "$bcrypt-sha256$v=2,t=2b,r=5$5Hg1DKFqPE8C2aflZ5vVoe$wOK1VFFtS8IGTrGa7.h5fs0u84qyPb",
		"bad char in salt":   "$bcrypt-sha256$v=2,t=2b,r=5$5Hg1DKF!PE8C2aflZ5vVoe$wOK1VFFtS8IGTrGa7.h5fs0u84qyPbS",
		"version 3":          "$bcrypt-sha256$v=3,t=2b,r=5$5Hg1DKFqPE8C2aflZ5vVoe$wOK1VFFtS8IGTrGa7.h5fs0u84qyPbS",
		"v2 with 2a":         "$bcrypt-sha256$v=2,t=2a,r=5$5Hg1DKFqPE8C2aflZ5vVoe$wOK1VFFtS8IGTrGa7.h5fs0u84qyPbS",
		"no digest":          "$bcrypt-sha256$v=2,t=2b,r=5$5Hg1DKFqPE8C2aflZ5vVoe",
		"cost out of range":  "$bcrypt-sha256$v=2,t=2b,r=99$5Hg1DKFqPE8C2aflZ5vVoe$wOK1VFFtS8IGTrGa7.h5fs0u84qyPbS",
		"plain bcrypt short": "$2b$05$c92SVSfjeiCD6F2nAD6y0uBpJDjdRkt0EgeC4/31Rf2LUZbDRDE",
		"plain bad cost":     "$2b$xx$c92SVSfjeiCD6F2nAD6y0uBpJDjdRkt0EgeC4/31Rf2LUZbDRDE.O",
	} {
		t.Run(name, func(t *testing.T) {
			ok, err := mailu.ParsePasswordHash(h).Matches("password")
			if ok || !errors.Is(err, mailu.ErrHashMalformed) {
				t.Fatalf("Matches = %t, %v; want ErrHashMalformed", ok, err)
			}
		})
	}
}

// TestPasswordHashOtherSchemes: MailU hashes every password set through
// its API with bcrypt_sha256, so a hash in another scheme is no password
// this project set: no match, and no error that would stop a decision.
func TestPasswordHashOtherSchemes(t *testing.T) {
	for _, h := range []string{
		"{SHA512-CRYPT}$6$rounds=5000$usesomesillystri$D4IrlXatmP7rx3P3InaxBeoomnAihCKRVQP22JZ6EY47Wc6BkroIuUUBOov1i.S5KPgErtP/EN5mcO.ChWQW21",
		"$pbkdf2-sha256$29000$N2bMmTMmZGyN8Z5Tak3JmQ$Mvmyp8AgFC8Rt7PE7z9tJ.3a5uU5r8x0hAPlEeF6U8A",
		"plaintext",
	} {
		if ok, err := mailu.ParsePasswordHash(h).Matches("password"); ok || err != nil {
			t.Errorf("Matches(%.20s...) = %t, %v; want false, nil", h, ok, err)
		}
	}
}

func TestPasswordHashRedacted(t *testing.T) {
	const raw = "$bcrypt-sha256$v=2,t=2b,r=5$5Hg1DKFqPE8C2aflZ5vVoe$wOK1VFFtS8IGTrGa7.h5fs0u84qyPbS"
	h := mailu.ParsePasswordHash(raw)
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "hash", h)
	for _, out := range []string{fmt.Sprint(h), fmt.Sprintf("%v %+v %#v %s", h, h, h, h), logged.String()} {
		if strings.Contains(out, "5Hg1DKFqPE8C2aflZ5vVoe") {
			t.Fatalf("the hash leaks: %s", out)
		}
	}
}

func TestClientPasswordHash(t *testing.T) {
	const hash = "$bcrypt-sha256$v=2,t=2b,r=5$5Hg1DKFqPE8C2aflZ5vVoe$wOK1VFFtS8IGTrGa7.h5fs0u84qyPbS"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/user/admin@acme.test":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"email":"admin@acme.test","password":%q,"enabled":true}`, hash)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"code":404,"message":"User not found"}`)
		}
	}))
	defer srv.Close()
	c := mailu.New(srv.URL+"/api/v1", token, nil)
	h, err := c.PasswordHash(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Matches("password"); !ok || err != nil {
		t.Fatalf("Matches = %t, %v", ok, err)
	}
	if _, err := c.PasswordHash(context.Background(), "nobody@acme.test"); !errors.Is(err, mailu.ErrNotFound) {
		t.Fatalf("unknown user: %v, want ErrNotFound", err)
	}
}
