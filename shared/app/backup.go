package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"smtp-vault/shared/backup"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/tracing"
	"smtp-vault/shared/vault"
)

// BackupConfig is the backup function's settings, read apart from Config
// since only that function and the restore command use them.
type BackupConfig struct {
	Bucket   string // BACKUP_BUCKET: the backups bucket, on the audit bucket's S3 endpoint
	KMSKeyID string // BACKUP_KMS_KEY_ID: the KMS key wrapping data keys (AWS)
	// KeyFile (BACKUP_KEY_FILE, default .local/backup.key) wraps data keys
	// when there is no KMS key: the local stand-in for KMS, kept outside
	// Vault's data directory.
	KeyFile string
	TempDir string // BACKUP_TEMP_DIR: where a restore keeps the backup it verifies; default os.TempDir()
	// UnsealWait (BACKUP_UNSEAL_WAIT, default 2m) is how long a restore
	// waits for the target to be unsealed before checking credentials.
	UnsealWait time.Duration
	// RestoreTargets (BACKUP_RESTORE_TARGETS, comma-separated) are the
	// only Vault addresses a restore may send a decrypted snapshot to (and
	// log in at with the function's identity): https, or http on loopback.
	// Empty: the function restores nowhere; scripts/restore names its
	// -target here.
	RestoreTargets []string
	// Now is the clock of the backups' names and retention; default
	// time.Now (tests move it).
	Now func() time.Time
}

// BackupConfigFromEnv reads BackupConfig.
func BackupConfigFromEnv() (BackupConfig, error) {
	c := BackupConfig{
		Bucket:   os.Getenv("BACKUP_BUCKET"),
		KMSKeyID: os.Getenv("BACKUP_KMS_KEY_ID"),
		KeyFile:  env("BACKUP_KEY_FILE", ".local/backup.key"),
		TempDir:  os.Getenv("BACKUP_TEMP_DIR"),
	}
	var err error
	if c.RestoreTargets, err = RestoreTargetsFromEnv(); err != nil {
		return BackupConfig{}, err
	}
	if c.UnsealWait, err = duration("BACKUP_UNSEAL_WAIT", 2*time.Minute); err != nil {
		return BackupConfig{}, err
	}
	if c.Bucket == "" {
		return BackupConfig{}, fmt.Errorf("config: BACKUP_BUCKET is required")
	}
	if c.KMSKeyID == "" && os.Getenv("AWS_LAMBDA_FUNCTION_NAME") != "" {
		return BackupConfig{}, fmt.Errorf("config: BACKUP_KMS_KEY_ID is required in Lambda: the backups' key must not live in the Vault they back up")
	}
	return c, nil
}

// Backups is the backup service wired to this App's Vault and S3.
type Backups struct {
	Service *backup.Service
	app     *App
	cfg     BackupConfig
}

// NewBackups wires the backup service: snapshots of the App's Vault, data
// keys from KMS (BACKUP_KMS_KEY_ID) or the local key file, the bucket on
// the audit bucket's S3 endpoint, restores audited on the App's trail.
func (a *App) NewBackups(ctx context.Context, bc BackupConfig) (*Backups, error) {
	var loaded *aws.Config
	loadAWS := func() (aws.Config, error) {
		if loaded == nil {
			c, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(a.Config.AWSRegion))
			if err != nil {
				return aws.Config{}, fmt.Errorf("app: load AWS config: %w", err)
			}
			tracing.InstrumentAWS(&c)
			loaded = &c
		}
		return *loaded, nil
	}
	cfg := a.Config
	cfg.AuditBucket = bc.Bucket // s3Client builds a client when any bucket is set
	s3c, err := s3Client(cfg, loadAWS)
	if err != nil {
		return nil, err
	}
	if bc.Now == nil {
		bc.Now = time.Now
	}
	if bc.UnsealWait == 0 {
		bc.UnsealWait = 2 * time.Minute
	}
	var keys backup.KeySource
	if bc.KMSKeyID != "" {
		c, err := loadAWS()
		if err != nil {
			return nil, err
		}
		keys = backup.KMS{Client: kms.NewFromConfig(c), KeyID: bc.KMSKeyID}
	} else {
		kf, err := backup.OpenKeyFile(bc.KeyFile)
		if err != nil {
			return nil, err
		}
		keys = kf
	}
	svc := backup.New(backup.Config{
		Vault:   a.Vault,
		Keys:    keys,
		Bucket:  &backup.Bucket{Client: s3c, Name: bc.Bucket},
		Audit:   a.Audit,
		Now:     bc.Now,
		Log:     a.Log,
		TempDir: bc.TempDir,
	})
	return &Backups{Service: svc, app: a, cfg: bc}, nil
}

// RestoreRequest is a restore into a fresh Vault: the on-demand invocation
// of the backup function (events/backup-restore.json) and scripts/restore.
type RestoreRequest struct {
	Backup     string `json:"backup"`            // a backup's name, or "latest"
	TargetAddr string `json:"target_vault_addr"` // the fresh Vault, initialised, unsealed
	// TargetToken is the fresh Vault's initial root token: snapshot-force
	// needs one. The restore replaces that Vault's storage, so the token
	// is void once the snapshot is in.
	TargetToken string `json:"target_token"`
	SMTPLogin   bool   `json:"smtp_login"`   // also log in over SMTP with every credential
	RequestedBy string `json:"requested_by"` // who asked, for the audit trail
	// Checked (may be nil) hears of each tenant as the check after the
	// restore finishes it, with the count so far (scripts/restore's
	// progress); never part of an invocation's event.
	Checked func(c credential.TenantCheck, done, total int) `json:"-"`
}

// LogValue keeps the target's token out of any log line that names a
// request.
func (r RestoreRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("backup", r.Backup), slog.String("target_vault_addr", r.TargetAddr), slog.String("requested_by", r.RequestedBy))
}

// Restore restores a backup into the fresh Vault of req, then waits for
// that Vault to be unsealed (unseal, if given, submits the original
// Vault's unseal keys) and checks with the functions' own Vault login
// that every tenant's credential decrypts. The backup is refused before
// anything is sent if it fails any check (backup.Service.Restore).
func (b *Backups) Restore(ctx context.Context, req RestoreRequest, unseal func(context.Context, *vault.Client) error, progress func(backup.Progress)) (backup.Report, []credential.TenantCheck, error) {
	if req.TargetAddr == "" || req.TargetToken == "" {
		return backup.Report{}, nil, fmt.Errorf("%w: target_vault_addr and target_token are required", credential.ErrInvalidInput)
	}
	if err := checkRequestedBy(req.RequestedBy); err != nil {
		return backup.Report{}, nil, err
	}
	if err := checkRestoreTarget(req.TargetAddr); err != nil {
		return backup.Report{}, nil, fmt.Errorf("%w: target_vault_addr: %w", credential.ErrInvalidInput, err)
	}
	if !slices.Contains(b.cfg.RestoreTargets, req.TargetAddr) {
		return backup.Report{}, nil, fmt.Errorf("%w: target_vault_addr %s is not one of the restore targets this function is configured for (BACKUP_RESTORE_TARGETS)", credential.ErrInvalidInput, req.TargetAddr)
	}
	// The fresh Vault is reached as the functions' own: VAULT_CACERT's
	// roots beside the system's, and never vault/api's default transport,
	// which would honour VAULT_SKIP_VERIFY.
	target, err := vault.New(vault.Config{Address: req.TargetAddr, AuthMethod: vault.AuthToken, Token: req.TargetToken,
		Timeout: b.app.Config.VaultTimeout, HTTPClient: vaultHTTPClient(b.app.Config)})
	if err != nil {
		return backup.Report{}, nil, err
	}
	var checks []credential.TenantCheck
	rep, err := b.Service.Restore(ctx, backup.RestoreOptions{
		Backup:     req.Backup,
		Target:     target,
		Progress:   progress,
		Actor:      req.RequestedBy,
		TargetAddr: req.TargetAddr,
		Verify: func(ctx context.Context) (backup.Verification, error) {
			if err := b.waitUnsealed(ctx, target, unseal); err != nil {
				return backup.Verification{}, err
			}
			checks, err = b.verifyAt(ctx, req.TargetAddr, req.SMTPLogin, req.Checked)
			if err != nil {
				return backup.Verification{}, err
			}
			v := backup.Verification{Tenants: len(checks)}
			for _, c := range checks {
				if c.Decrypted && (c.LoggedIn == nil || *c.LoggedIn) {
					v.Decrypted++
				} else {
					v.Failed = append(v.Failed, c.TenantID)
				}
			}
			return v, nil
		},
	})
	return rep, checks, err
}

// checkRestoreTarget accepts a Vault address a decrypted snapshot may be
// sent to: an https URL of a host, or http on loopback (the local stack),
// with no user, path, query or fragment.
// RestoreTargetsFromEnv reads BACKUP_RESTORE_TARGETS (comma-separated
// Vault addresses), each checked as a restore target.
func RestoreTargetsFromEnv() ([]string, error) {
	var targets []string
	for _, t := range strings.Split(os.Getenv("BACKUP_RESTORE_TARGETS"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			if err := checkRestoreTarget(t); err != nil {
				return nil, fmt.Errorf("config: BACKUP_RESTORE_TARGETS: %w", err)
			}
			targets = append(targets, t)
		}
	}
	return targets, nil
}

func checkRestoreTarget(addr string) error {
	u, err := url.Parse(addr)
	if err == nil && u.User != nil {
		// Not echoed: the part before @ may be a password.
		return fmt.Errorf("a restore target must not carry credentials (%s)", u.Redacted())
	}
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not a Vault address (scheme://host[:port])", addr)
	}
	if u.Scheme == "https" || u.Scheme == "http" && mailu.IsLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%q must be https (plain http only on loopback)", addr)
}

// checkRequestedBy requires who asks for a restore, for the audit trail:
// a short printable name.
func checkRequestedBy(by string) error {
	if strings.TrimSpace(by) == "" || len(by) > 128 || strings.IndexFunc(by, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("%w: requested_by is required: who asks for the restore (at most 128 printable characters)", credential.ErrInvalidInput)
	}
	return nil
}

// waitUnsealed waits until the restore has taken effect in the target
// and the target is unsealed and active. Vault installs a snapshot after
// answering the request: the restore is in once the target seals itself (a
// snapshot of another Vault brings that Vault's keyring, so it needs the
// original unseal keys, which unseal submits if given; with auto-unseal it
// unseals itself) or once the target's own token, gone with its old token
// store, is refused.
func (b *Backups) waitUnsealed(ctx context.Context, target *vault.Client, unseal func(context.Context, *vault.Client) error) error {
	deadline := time.Now().Add(b.cfg.UnsealWait)
	restored, unsealed := false, false
	for {
		h, err := target.Health(ctx)
		switch {
		case err != nil:
			// Busy installing the snapshot; ask again.
		case h.Sealed:
			restored = true
			if unseal != nil && !unsealed {
				unsealed = true
				if err := unseal(ctx, target); err != nil {
					return fmt.Errorf("unseal the restored Vault: %w", err)
				}
				continue
			}
		case !restored:
			if alive, err := target.TokenAlive(ctx); err == nil && !alive {
				restored = true
				continue
			}
		default:
			if l, err := target.Leader(ctx); err == nil && l.IsSelf {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if !restored {
				return fmt.Errorf("the restore did not show in the target Vault within %v (still its own token and unsealed)", b.cfg.UnsealWait)
			}
			return fmt.Errorf("the restored Vault is still sealed or standby after %v: unseal it with the original Vault's unseal keys, then verify", b.cfg.UnsealWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// verifyAt checks every credential in the Vault at addr, logged in as the
// functions are (the restored Vault has their auth methods back).
func (b *Backups) verifyAt(ctx context.Context, addr string, login bool, each func(credential.TenantCheck, int, int)) ([]credential.TenantCheck, error) {
	cfg := b.app.Config
	cfg.VaultAddr = addr
	cfg.AuditBucket, cfg.AlertStateBucket = "", "" // nothing is audited by a check
	at, err := New(ctx, cfg, Options{AuditOut: io.Discard, LogOut: io.Discard, Now: b.cfg.Now, Notifier: b.app.Notifier})
	if err != nil {
		return nil, err
	}
	return at.API.Credentials.VerifyAll(ctx, login, each)
}

// VerifyRequest asks the backup function to check every credential in
// its own Vault (after an operator unsealed a restored Vault by hand).
type VerifyRequest struct {
	SMTPLogin bool `json:"smtp_login"`
}

// backupEvent is what the backup function is invoked with: the schedule
// (any other event, e.g. EventBridge's), or one of these.
type backupEvent struct {
	Restore *RestoreRequest `json:"restore"`
	Verify  *VerifyRequest  `json:"verify"`
}

// BackupFunction is the backup function's handler: a backup on the daily
// schedule or any other event, a restore with {"restore": {...}}, a check
// of every credential with {"verify": {...}}. The service is wired at the
// first invocation from BACKUP_* (BackupConfigFromEnv) unless bc is given.
func (a *App) BackupFunction(bc *BackupConfig) func(context.Context, json.RawMessage) (any, error) {
	backups := &lazyBackups{app: a, bc: bc}
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		b, werr := backups.get(ctx)
		if werr != nil {
			a.Log.ErrorContext(ctx, "backup failed", metric("BackupFailed"), "error", werr)
			return nil, werr
		}
		var ev backupEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("decode backup event: %w", err)
		}
		switch {
		case ev.Restore != nil:
			rep, checks, err := b.Restore(ctx, *ev.Restore, nil, nil)
			if err != nil {
				a.Log.ErrorContext(ctx, "restore failed", "error", err)
			}
			return map[string]any{"report": rep, "tenants": checks}, err
		case ev.Verify != nil:
			checks, err := a.API.Credentials.VerifyAll(ctx, ev.Verify.SMTPLogin, nil)
			return map[string]any{"tenants": checks}, err
		}
		res, err := b.Service.Backup(ctx)
		switch {
		case err != nil && res.Backup.Name != "":
			// The backup is complete; retention failed.
			a.Log.InfoContext(ctx, "backup succeeded", metric("BackupSucceeded"), "backup", res.Backup.Name)
			a.Log.ErrorContext(ctx, "backup retention failed", metric("BackupFailed"), "error", err)
		case err != nil:
			a.Log.ErrorContext(ctx, "backup failed", metric("BackupFailed"), "error", err)
		default:
			a.Log.InfoContext(ctx, "backup succeeded", metric("BackupSucceeded"), "backup", res.Backup.Name)
		}
		return res, err
	}
}

// VaultHealth is the console's view of Vault: sealed, leader, peers and the
// last good backup's age and colour. It never fails; what could not be
// read is listed in its Errors.
func (b *Backups) VaultHealth(ctx context.Context) backup.Health {
	return b.Service.VaultHealth(ctx, b.app.Vault)
}

// metric is a log attribute in CloudWatch's embedded metric format: the
// line it is on counts 1 for name in namespace smtp-vault/backup, which
// the BackupFailed and no-backup-in-26-hours alarms of template.yaml
// watch. Elsewhere it is a plain log field.
func metric(name string) slog.Attr {
	return slog.Group("",
		slog.Any("_aws", map[string]any{
			"Timestamp": time.Now().UnixMilli(),
			"CloudWatchMetrics": []map[string]any{{
				"Namespace":  "smtp-vault/backup",
				"Dimensions": [][]string{{}},
				"Metrics":    []map[string]string{{"Name": name, "Unit": "Count"}},
			}},
		}),
		slog.Int(name, 1),
	)
}

// lazyBackups wires the backup service at its first use, from bc or
// BACKUP_* (BackupConfigFromEnv): the backup function's and the health
// route's.
type lazyBackups struct {
	app  *App
	bc   *BackupConfig
	once sync.Once
	b    *Backups
	err  error
}

func (l *lazyBackups) get(ctx context.Context) (*Backups, error) {
	l.once.Do(func() {
		c := l.bc
		if c == nil {
			cfg, err := BackupConfigFromEnv()
			if err != nil {
				l.err = err
				return
			}
			c = &cfg
		}
		l.b, l.err = l.app.NewBackups(ctx, *c)
	})
	return l.b, l.err
}

// healthReporter is the console's view of Vault and its backups.
type healthReporter struct{ backups *lazyBackups }

// VaultHealth implements api.HealthReporter. Without a backups bucket it
// still reports Vault; the missing backups show in Errors.
func (h *healthReporter) VaultHealth(ctx context.Context) backup.Health {
	b, err := h.backups.get(ctx)
	if err != nil {
		rep := backup.VaultState(ctx, h.backups.app.Vault)
		rep.BackupColour = backup.ColourNone
		rep.Errors = append(rep.Errors, "backups not configured: "+err.Error())
		return rep
	}
	return b.VaultHealth(ctx)
}

// UseBackups makes the console's health route read the backups of bc (the
// local stack's bucket and key file) instead of BACKUP_* from the
// environment.
func (a *App) UseBackups(bc *BackupConfig) {
	a.API.Health = &healthReporter{backups: &lazyBackups{app: a, bc: bc}}
}
