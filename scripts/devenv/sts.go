package devenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Settings of the local aws auth method (the production values are in
// docs/access.md, "Vault identities").
const (
	// LocalAWSAccount is the account of the functions' local IAM roles.
	LocalAWSAccount = "000000000000"
	// STSRegion is the region the functions sign their logins for
	// (shared/app's default AWS_REGION) and Vault's sts_region.
	STSRegion = "eu-central-1"
	// IAMServerID is the local iam_server_id_header_value.
	IAMServerID = "smtp-vault-local"
)

// LocalRoleARN is the local IAM role of a function, which the local
// Vault's aws auth role for that function is bound to.
func LocalRoleARN(function string) string {
	return "arn:aws:iam::" + LocalAWSAccount + ":role/smtp-vault-" + function
}

// STS stands in for AWS STS's GetCallerIdentity, the one call Vault's aws
// auth method makes to learn who signed a login: Vault forwards the
// function's signed request here (sts_endpoint), and the answer names the
// role whose credentials signed it. Like STS it checks the SigV4
// signature with the secret key it issued, and like Vault's server id
// check it wants X-Vault-AWS-IAM-Server-ID among the signed headers.
type STS struct {
	URL string // http://127.0.0.1:port, Vault's sts_endpoint

	srv *http.Server
	mu  sync.Mutex
	ids map[string]stsIdentity // access key id -> who
}

type stsIdentity struct {
	creds   aws.Credentials
	roleARN string
}

// StartSTS serves the stand-in on a free loopback port.
func StartSTS() (*STS, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("devenv: sts stand-in: %w", err)
	}
	s := &STS{URL: "http://" + ln.Addr().String(), ids: map[string]stsIdentity{}}
	// No ServeMux: Vault asks for "//" (its endpoint joined with the
	// signed URL's path), which a mux would redirect.
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the stand-in.
func (s *STS) Close() error { return s.srv.Close() }

// Credentials issues fresh credentials of roleARN, as Lambda hands a
// function its role's session credentials.
func (s *STS) Credentials(roleARN string) aws.CredentialsProvider {
	id := "AKIALOCAL" + strings.ToUpper(rand.Text()[:11])
	c := aws.Credentials{AccessKeyID: id, SecretAccessKey: rand.Text() + rand.Text(), Source: "devenv-sts"}
	s.mu.Lock()
	s.ids[id] = stsIdentity{creds: c, roleARN: roleARN}
	s.mu.Unlock()
	return aws.NewCredentialsCache(staticCreds(c))
}

type staticCreds aws.Credentials

func (c staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials(c), nil
}

var authzPattern = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/sts/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

func (s *STS) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil || r.Method != http.MethodPost {
		stsError(w, http.StatusBadRequest, "InvalidAction", "only a POST of GetCallerIdentity is served")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("Action") != "GetCallerIdentity" {
		stsError(w, http.StatusBadRequest, "InvalidAction", "only GetCallerIdentity is served")
		return
	}
	m := authzPattern.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		stsError(w, http.StatusForbidden, "MissingAuthenticationToken", "the request is not signed with SigV4 for sts")
		return
	}
	keyID, region, signed := m[1], m[3], strings.Split(m[4], ";")
	if r.Header.Get("X-Vault-AWS-IAM-Server-ID") == "" || !slices.Contains(signed, "x-vault-aws-iam-server-id") {
		stsError(w, http.StatusForbidden, "AccessDenied", "X-Vault-AWS-IAM-Server-ID is missing or not signed")
		return
	}
	s.mu.Lock()
	who, ok := s.ids[keyID]
	s.mu.Unlock()
	if !ok {
		stsError(w, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	if !signatureMatches(r, body, signed, who.creds, region) {
		stsError(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	}
	role := strings.TrimPrefix(who.roleARN, "arn:aws:iam::"+LocalAWSAccount+":role/")
	arn := "arn:aws:sts::" + LocalAWSAccount + ":assumed-role/" + role + "/" + role
	sum := sha256.Sum256([]byte(who.roleARN))
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>%s</Arn>
    <UserId>AROA%s:%s</UserId>
    <Account>%s</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>
`, html.EscapeString(arn), strings.ToUpper(hex.EncodeToString(sum[:8])), html.EscapeString(role), LocalAWSAccount, rand.Text())
}

// signatureMatches signs the request again with the secret key issued
// for its access key id, over the headers it says it signed, and compares.
func signatureMatches(r *http.Request, body []byte, signed []string, creds aws.Credentials, region string) bool {
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return false
	}
	// The client signed https://<host>/ (Vault keeps the Host header and
	// asks for "//" here).
	again, err := http.NewRequest(http.MethodPost, "https://"+r.Host+"/", bytes.NewReader(body))
	if err != nil {
		return false
	}
	for _, h := range signed {
		if h != "host" && h != "content-length" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), "sts", region, at); err != nil {
		return false
	}
	return again.Header.Get("Authorization") == r.Header.Get("Authorization")
}

func stsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`, code, html.EscapeString(msg), rand.Text())
}
