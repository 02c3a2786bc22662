package audit_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/vault"
)

// The bucket tests run against the real local S3 server and the real
// local Vault (the MAC keys come from its Transit engine, the anchors go
// to its KV). Vault starts with the first test that needs it.
var (
	vaultOnce sync.Once
	vaultSrv  *devenv.Vault
	vaultErr  error
	vaultDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if vaultSrv != nil {
		vaultSrv.Stop()
	}
	if vaultDir != "" {
		os.RemoveAll(vaultDir)
	}
	os.Exit(code)
}

// functionsVault is a Vault client logged in as the functions are.
func functionsVault(t testing.TB) *vault.Client {
	t.Helper()
	vaultOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if vaultDir, vaultErr = os.MkdirTemp("", "audit-vault-"); vaultErr != nil {
			return
		}
		addr, err := devenv.FreeAddr()
		if err != nil {
			vaultErr = err
			return
		}
		vaultSrv, vaultErr = devenv.StartVault(ctx, vaultDir, addr)
	})
	if vaultErr != nil {
		t.Fatalf("start vault: %v", vaultErr)
	}
	c, err := vault.New(vault.Config{Address: vaultSrv.Addr, AuthMethod: vault.AuthAppRole, RoleID: vaultSrv.RoleID, SecretID: vaultSrv.SecretID})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countingTransit counts the Transit calls the MAC keys make.
type countingTransit struct {
	audit.Transit
	dataKeys, decrypts atomic.Int32
}

func (c *countingTransit) DataKey(ctx context.Context, key, dc string) ([]byte, string, error) {
	c.dataKeys.Add(1)
	return c.Transit.DataKey(ctx, key, dc)
}

func (c *countingTransit) Decrypt(ctx context.Context, key, dc, wrapped string) ([]byte, error) {
	c.decrypts.Add(1)
	return c.Transit.Decrypt(ctx, key, dc, wrapped)
}

// newBucket is one function instance's view of the trail: its own MAC
// key, fetched from the real Vault's Transit on its first record.
func newBucket(t testing.TB, c *s3.Client, bucket string, years int) *audit.Bucket {
	t.Helper()
	v := functionsVault(t)
	return audit.NewBucket(audit.BucketConfig{
		Client: c, Name: bucket, RetentionYears: years,
		Keys:    audit.NewKeys(v, devenv.AuditMACKey),
		Anchors: &audit.VaultAnchors{Vault: v, Mount: devenv.AuditAnchorsMount},
	})
}
