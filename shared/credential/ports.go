package credential

import (
	"context"
	"time"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/notify"
	"smtp-vault/shared/vault"
)

// The ports of the domain: what it needs from the adapters around it,
// declared here so that no adapter knows the domain.

// Vault is what the service needs from Vault; *vault.Client implements it,
// and tests wrap it to inject faults.
type Vault interface {
	Read(ctx context.Context, path string) (*vault.Secret, error)
	WriteCAS(ctx context.Context, path string, data map[string]string, cas int) (int, error)
	// ReadKV and WriteKVCAS are Read and WriteCAS on another KV v2 mount:
	// the status index's.
	ReadKV(ctx context.Context, mount, path string) (*vault.Secret, error)
	WriteKVCAS(ctx context.Context, mount, path string, data map[string]string, cas int) (int, error)
	ReadMetadata(ctx context.Context, path string) (*vault.Metadata, error)
	PatchCustomMetadata(ctx context.Context, path string, md map[string]string) error
	List(ctx context.Context, path string) ([]string, error)
	DataKey(ctx context.Context, key, derivationContext string) ([]byte, string, error)
	Decrypt(ctx context.Context, key, derivationContext, wrapped string) ([]byte, error)
	Rewrap(ctx context.Context, key, derivationContext, wrapped string) (string, error)
}

// MailU is one tenant's MailU admin API; *mailu.Client implements it.
type MailU interface {
	GetUser(ctx context.Context, email string) (mailu.User, error)
	// PasswordHash is the user's password hash: which password MailU
	// holds, answered without a login (holds.go).
	PasswordHash(ctx context.Context, email string) (mailu.PasswordHash, error)
	CreateUser(ctx context.Context, u mailu.UserCreate) error
	SetPassword(ctx context.Context, email, password string) error
}

// Recorder records audit events, failing closed.
type Recorder interface {
	Record(ctx context.Context, e audit.Event) error
}

// Notifier delivers rotation notices to the platform's admins.
type Notifier interface {
	Notify(ctx context.Context, m notify.Message) error
}

// Queue takes jobs for the rotate worker: SQS in AWS (queue.SQS), an
// in-process queue locally. Send returns how many jobs it accepted, and an
// error when not all.
type Queue interface {
	Send(ctx context.Context, jobs []Job) (int, error)
}

// Trail is the audit trail in the Object Lock bucket, read back for the
// audit route and the chain verification.
type Trail interface {
	Query(ctx context.Context, q audit.Query) (audit.Page, error)
	Verify(ctx context.Context, chain string) (audit.Report, error)
	// AnchorAll records each chain's head outside the bucket (in Vault),
	// once a day from the sweep.
	AnchorAll(ctx context.Context, now time.Time) ([]audit.AnchorReport, error)
}

// ResetQueue takes the compromise response's jobs for the emergency-reset
// worker.
type ResetQueue interface {
	Send(ctx context.Context, jobs []ResetJob) (int, error)
}
