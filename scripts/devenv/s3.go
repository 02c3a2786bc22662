package devenv

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// AuditBucket is the Object Lock bucket the local stack keeps the audit
// trail in (template.yaml's AuditBucket in AWS).
const AuditBucket = "smtp-vault-audit"

// AlertStateBucket is the plain bucket (no Object Lock) of the alert
// rules' counters (template.yaml's AlertStateBucket in AWS).
const AlertStateBucket = "smtp-vault-alert-state"

// BackupBucket is the plain bucket of the encrypted Vault backups
// (template.yaml's BackupsBucket in AWS).
const BackupBucket = "smtp-vault-backups"

// S3Region is the region the local S3 server answers as (S3_REGION).
const S3Region = "us-east-1"

// S3 is a running local S3-compatible server (versitygw, posix backend
// with versioning, so buckets can have Object Lock).
type S3 struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string
	Dir       string

	addr    string
	proc    *process
	logFile *os.File
}

type s3State struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// S3Binary is the versitygw server built by `make versitygw`.
func S3Binary() (string, error) {
	if p := os.Getenv("SMTP_VAULT_VERSITYGW_BIN"); p != "" {
		return p, nil
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("devenv: no S3 server at %s: run `make versitygw` first (the test and run targets do)", p)
	}
	return p, nil
}

// StartS3 starts (or restarts) the S3 server keeping its data under dir,
// listening on addr (host:port on loopback), and creates the audit bucket
// with Object Lock and the alert-state bucket the first time. Its root keys are generated once and
// kept in dir/keys.json (mode 0600).
func StartS3(ctx context.Context, dir, addr string) (*S3, error) {
	for _, d := range []string{"data", "versions"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	keysPath := filepath.Join(dir, "keys.json")
	var st s3State
	if b, err := os.ReadFile(keysPath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	if st.AccessKey == "" || st.SecretKey == "" {
		st = s3State{AccessKey: "local" + rand.Text()[:12], SecretKey: rand.Text()}
		if err := writeJSON(keysPath, st); err != nil {
			return nil, err
		}
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	s := &S3{Endpoint: "http://" + addr, AccessKey: st.AccessKey, SecretKey: st.SecretKey, Dir: dir, addr: addr, logFile: logFile}
	if err := s.Start(ctx); err != nil {
		logFile.Close()
		return nil, err
	}
	if err := s.CreateBucket(ctx, AuditBucket, true); err != nil {
		s.Stop()
		return nil, err
	}
	for _, b := range []string{AlertStateBucket, BackupBucket} {
		if err := s.CreateBucket(ctx, b, false); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// Start starts the server process again after Stop (tests stop it to
// show that an unreachable audit bucket refuses everything).
func (s *S3) Start(ctx context.Context) error {
	bin, err := S3Binary()
	if err != nil {
		return err
	}
	// The keys go in the environment, not on the command line, where any
	// local user could read them.
	env := append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	p, err := startProcess(s.logFile, bin, env, "--port", s.addr, "--region", S3Region, "--quiet", "--keep-alive",
		"posix", "--versioning-dir", filepath.Join(s.Dir, "versions"), filepath.Join(s.Dir, "data"))
	if err != nil {
		return err
	}
	s.proc = p
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("devenv: the S3 server exited during start\n%s", logTail(s.logFile.Name(), 20))
		default:
		}
		conn, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.proc.stop(5 * time.Second)
			return fmt.Errorf("devenv: the S3 server did not listen on %s within 30s", s.addr)
		}
		select {
		case <-ctx.Done():
			s.proc.stop(5 * time.Second)
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the server and waits for it to exit; its data stays.
func (s *S3) Stop() error {
	s.proc.stop(10 * time.Second)
	s.proc = nil
	return nil
}

// Close stops the server and closes its log.
func (s *S3) Close() error {
	if s.proc != nil {
		s.Stop()
	}
	return s.logFile.Close()
}

// Client returns an S3 client of the server's root user, path-style, as
// any S3 tool would be configured with dev.env.
func (s *S3) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       S3Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket creates a bucket unless it exists. With objectLock the
// bucket has Object Lock (and so versioning) enabled; tests use a bucket
// without it to show what the hash chain alone detects.
func (s *S3) CreateBucket(ctx context.Context, name string, objectLock bool) error {
	c := s.Client()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name), ObjectLockEnabledForBucket: aws.Bool(objectLock)})
	var owned *s3types.BucketAlreadyOwnedByYou
	var exists *s3types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return fmt.Errorf("devenv: create bucket %s: %w", name, err)
	}
	return nil
}
