package vault

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const stsBody = "Action=GetCallerIdentity&Version=2011-06-15"

// AWSIAMLogin returns a Config.AWSLogin that signs an sts:GetCallerIdentity
// request with the given credentials, the body Vault's aws auth method
// expects at auth/aws/login. Vault forwards the signed request to STS to learn
// the caller's IAM role; the credentials themselves never reach Vault.
func AWSIAMLogin(creds aws.CredentialsProvider, region string) func(ctx context.Context, serverID string) (map[string]any, error) {
	return func(ctx context.Context, serverID string) (map[string]any, error) {
		endpoint := "https://sts." + region + ".amazonaws.com/"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(stsBody))
		if err != nil {
			return nil, fmt.Errorf("build sts request: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		if serverID != "" {
			req.Header.Set("X-Vault-AWS-IAM-Server-ID", serverID)
		}
		c, err := creds.Retrieve(ctx)
		if err != nil {
			return nil, fmt.Errorf("retrieve aws credentials: %w", err)
		}
		sum := sha256.Sum256([]byte(stsBody))
		if err := v4.NewSigner().SignHTTP(ctx, c, req, hex.EncodeToString(sum[:]), "sts", region, time.Now()); err != nil {
			return nil, fmt.Errorf("sign sts request: %w", err)
		}
		headers, err := json.Marshal(req.Header)
		if err != nil {
			return nil, fmt.Errorf("encode signed headers: %w", err)
		}
		return map[string]any{
			"iam_http_request_method": http.MethodPost,
			"iam_request_url":         base64.StdEncoding.EncodeToString([]byte(endpoint)),
			"iam_request_body":        base64.StdEncoding.EncodeToString([]byte(stsBody)),
			"iam_request_headers":     base64.StdEncoding.EncodeToString(headers),
		}, nil
	}
}
