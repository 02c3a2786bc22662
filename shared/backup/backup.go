// Package backup keeps encrypted raft snapshots of Vault in an S3 bucket
// and restores them: a streaming AES-256-GCM format under data keys from a
// KeySource outside Vault, a manifest written last so a crash never leaves
// a backup that looks complete, retention of 30 daily and 12 monthly
// backups, and a restore that verifies the whole backup before Vault is
// touched. It knows nothing about Lambda or HTTP.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/vault"
)

// Source is the Vault being backed up; *vault.Client implements it.
type Source interface {
	Snapshot(ctx context.Context, w io.Writer) error
	Health(ctx context.Context) (vault.Health, error)
}

// Target is the Vault a backup is restored into; *vault.Client
// implements it.
type Target interface {
	RestoreSnapshot(ctx context.Context, r io.Reader) error
}

// Recorder records audit events, failing closed; *audit.Recorder
// implements it.
type Recorder interface {
	Record(ctx context.Context, e audit.Event) error
}

// Config wires a Service.
type Config struct {
	Vault  Source
	Keys   KeySource
	Bucket *Bucket
	Audit  Recorder
	Now    func() time.Time // default time.Now
	Log    *slog.Logger     // default slog.Default()
	// TempDir holds a backup being restored while it is verified; default
	// os.TempDir(). It needs room for one encrypted backup.
	TempDir string
}

// Service takes, lists, prunes and restores backups.
type Service struct {
	cfg Config
}

// ErrNoBackup: there is no complete backup (of that name).
var ErrNoBackup = errors.New("backup: no complete backup")

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{cfg: cfg}
}

// Result is what one Backup run did.
type Result struct {
	Backup  Info     `json:"backup"`
	Deleted []string `json:"deleted"` // backups removed by retention, and orphans of crashed runs
}

// orphanAge is how old a data object without manifest must be before it
// is taken for a crashed run's leftover rather than a run in progress.
const orphanAge = 24 * time.Hour

// Backup takes a snapshot of Vault, encrypts it while uploading it, writes
// its manifest last, then applies retention. The snapshot flows through in
// chunks: memory stays flat however large Vault is. An error before the
// manifest leaves no complete backup; an error in retention is returned
// with the result of the backup, which is complete.
func (s *Service) Backup(ctx context.Context) (Result, error) {
	now := s.cfg.Now().UTC()
	h, err := s.cfg.Vault.Health(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("backup: vault health: %w", err)
	}
	if h.Sealed {
		return Result{}, fmt.Errorf("backup: %w", vault.ErrSealed)
	}
	key, wrapped, keyID, err := s.cfg.Keys.GenerateDataKey(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("backup: data key: %w", err)
	}
	defer clear(key)
	info := Info{Name: objectName(now), Time: now, VaultVersion: h.Version, KeyID: keyID, Format: formatVersion}

	up, err := s.cfg.Bucket.startUpload(ctx, info.Name)
	if err != nil {
		return Result{}, err
	}
	pr, pw := io.Pipe()
	snapErr := make(chan error, 1)
	go func() {
		err := s.cfg.Vault.Snapshot(ctx, pw)
		pw.CloseWithError(err)
		snapErr <- err
	}()
	info.SnapshotSize, err = Encrypt(up, pr, key, keyID, wrapped)
	pr.CloseWithError(errors.New("backup: encryption stopped")) // unblocks the snapshot on error
	if serr := <-snapErr; serr != nil && err == nil {
		err = fmt.Errorf("backup: snapshot: %w", serr)
	}
	if err == nil {
		info.Size, info.SHA256, err = up.finish()
	}
	if err != nil {
		up.abort()
		return Result{}, err
	}
	if err := s.cfg.Bucket.putManifest(ctx, info); err != nil {
		return Result{}, err
	}
	s.cfg.Log.InfoContext(ctx, "backup done", "backup", info.Name,
		"size", info.Size, "snapshot_size", info.SnapshotSize, "sha256", info.SHA256, "key_id", info.KeyID, "vault_version", info.VaultVersion)

	res := Result{Backup: info}
	res.Deleted, err = s.prune(ctx, now)
	return res, err
}

// prune applies Retain to the complete backups and removes what crashed
// runs left.
func (s *Service) prune(ctx context.Context, now time.Time) ([]string, error) {
	list, err := s.cfg.Bucket.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup: retention: %w", err)
	}
	_, drop := Retain(list, now)
	var deleted []string
	for _, b := range drop {
		if err := s.cfg.Bucket.remove(ctx, b.Name); err != nil {
			return deleted, fmt.Errorf("backup: retention: %w", err)
		}
		deleted = append(deleted, b.Name)
	}
	orphans, err := s.cfg.Bucket.orphans(ctx, now.Add(-orphanAge))
	if err != nil {
		return deleted, fmt.Errorf("backup: retention: %w", err)
	}
	for _, name := range orphans {
		if err := s.cfg.Bucket.remove(ctx, name); err != nil {
			return deleted, fmt.Errorf("backup: retention: %w", err)
		}
		deleted = append(deleted, name)
	}
	if len(deleted) > 0 {
		s.cfg.Log.InfoContext(ctx, "backup retention", "deleted", deleted)
	}
	return deleted, nil
}

// List returns the complete backups, oldest first.
func (s *Service) List(ctx context.Context) ([]Info, error) {
	return s.cfg.Bucket.List(ctx)
}

// Latest returns the newest complete backup; ErrNoBackup when there is none.
func (s *Service) Latest(ctx context.Context) (Info, error) {
	return s.find(ctx, "latest")
}

// find returns the backup called name ("" or "latest": the newest).
func (s *Service) find(ctx context.Context, name string) (Info, error) {
	list, err := s.cfg.Bucket.List(ctx)
	if err != nil {
		return Info{}, err
	}
	if name == "" || name == "latest" {
		if len(list) == 0 {
			return Info{}, ErrNoBackup
		}
		return list[len(list)-1], nil
	}
	if err := pathseg.Check(pathseg.BackupName, name); err != nil {
		return Info{}, fmt.Errorf("%w: %w", ErrNoBackup, err)
	}
	for _, b := range list {
		if b.Name == name {
			return b, nil
		}
	}
	return Info{}, fmt.Errorf("%w called %q", ErrNoBackup, name)
}

// LastGood returns the newest complete backup, for health; ok is false
// when there is none.
func (s *Service) LastGood(ctx context.Context) (info Info, ok bool, err error) {
	info, err = s.Latest(ctx)
	if errors.Is(err, ErrNoBackup) {
		return Info{}, false, nil
	}
	return info, err == nil, err
}

// Progress is one step of a restore, for an operator's progress lines.
type Progress struct {
	Phase string // download, verify, restore
	Done  int64  // bytes done in this phase
	Total int64  // bytes of this phase; 0 when not known
}

// Verification is what the caller's check found after a restore.
type Verification struct {
	Tenants int `json:"tenants"`
	// Decrypted counts the tenants whose credential decrypts (and logs
	// in, when the check was asked to log in).
	Decrypted int      `json:"decrypted"`
	Failed    []string `json:"failed,omitempty"` // tenant ids whose credential did not decrypt
}

// RestoreOptions say which backup goes where.
type RestoreOptions struct {
	Backup   string // a backup's name, or "" / "latest"
	Target   Target
	Progress func(Progress) // optional
	// Verify runs once the snapshot is in (unsealing the target if need
	// be, then checking every credential); its report is audited.
	// Optional.
	Verify func(ctx context.Context) (Verification, error)
	Actor  string // who asked, for the audit trail
	// TargetAddr names Target in the audit trail.
	TargetAddr string
}

// Report is the outcome of a restore.
type Report struct {
	Backup       Info          `json:"backup"`
	Restored     int64         `json:"restored_bytes"`
	Verification *Verification `json:"verification,omitempty"`
}

// Restore verifies a backup completely (size and SHA-256 against its
// manifest, the data key, every chunk's authentication, its end) before
// anything is sent to the target; a backup that fails any of them is
// refused with ErrCorrupt, ErrWrongKey or ErrNotBackup and the target is
// not touched. The backup is kept in a temporary file (mode 0600, removed
// afterwards) between verification and restore, so what is restored is
// what was verified. The restore is audited as vault_restored_from_backup.
func (s *Service) Restore(ctx context.Context, o RestoreOptions) (Report, error) {
	progress := o.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	info, err := s.find(ctx, o.Backup)
	if err != nil {
		return Report{}, err
	}
	f, err := os.CreateTemp(s.cfg.TempDir, "vault-backup-*.snap.enc")
	if err != nil {
		return Report{}, fmt.Errorf("backup: temporary file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	if err := s.download(ctx, info, f, progress); err != nil {
		return Report{}, err
	}
	key, hdr, err := s.openKey(ctx, info, f)
	if err != nil {
		return Report{}, err
	}
	defer clear(key)
	n, err := Decrypt(&counter{phase: "verify", total: info.SnapshotSize, progress: progress, w: io.Discard}, f, hdr, key)
	if err != nil {
		return Report{}, fmt.Errorf("backup %s: %w", info.Name, err)
	}
	if n != info.SnapshotSize {
		return Report{}, fmt.Errorf("backup %s: %w: %d bytes decrypted, manifest says %d", info.Name, ErrCorrupt, n, info.SnapshotSize)
	}

	// Verified: from here on the target changes, and nothing is sent to
	// it before the restore is on record.
	if s.cfg.Audit != nil {
		if err := s.cfg.Audit.Record(ctx, audit.Event{
			Event: audit.VaultRestoreStarted, UserID: o.Actor, Severity: audit.Warning,
			Details: map[string]any{"backup": info.Name, "sha256": info.SHA256, "target_vault_addr": o.TargetAddr},
		}); err != nil {
			return Report{}, fmt.Errorf("backup: record %s: %w", audit.VaultRestoreStarted, err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Report{}, err
	}
	if hdr, err = ReadHeader(f); err != nil {
		return Report{}, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := Decrypt(&counter{phase: "restore", total: info.SnapshotSize, progress: progress, w: pw}, f, hdr, key)
		pw.CloseWithError(err)
	}()
	err = o.Target.RestoreSnapshot(ctx, pr)
	pr.CloseWithError(errors.New("backup: restore ended"))
	if err != nil {
		return Report{}, fmt.Errorf("backup: restore %s: %w", info.Name, err)
	}
	rep := Report{Backup: info, Restored: info.SnapshotSize}
	s.cfg.Log.InfoContext(ctx, "backup restored", "backup", info.Name, "sha256", info.SHA256)

	ev := audit.Event{
		Event:    audit.VaultRestoredFromBackup,
		UserID:   o.Actor,
		Severity: audit.Warning,
		Details: map[string]any{
			"backup": info.Name, "backup_time": info.Time.Format(time.RFC3339), "sha256": info.SHA256,
			"size": info.Size, "key_id": info.KeyID, "vault_version": info.VaultVersion,
		},
	}
	var verr error
	if o.Verify != nil {
		v, err := o.Verify(ctx)
		if err != nil {
			verr = fmt.Errorf("backup: verify after restore: %w", err)
			ev.Details["verification"] = "failed: " + err.Error()
			ev.Severity = audit.Critical
		} else {
			rep.Verification = &v
			ev.Details["tenants"], ev.Details["decrypted"], ev.Details["failed_tenants"] = v.Tenants, v.Decrypted, v.Failed
			if len(v.Failed) > 0 {
				ev.Severity = audit.Critical
			}
		}
	}
	if s.cfg.Audit != nil {
		if err := s.cfg.Audit.Record(ctx, ev); err != nil {
			return rep, fmt.Errorf("backup: restored, but record %s: %w", audit.VaultRestoredFromBackup, err)
		}
	}
	return rep, verr
}

// download copies a backup into f, checking its size and SHA-256 against
// the manifest, and leaves f at its start.
func (s *Service) download(ctx context.Context, info Info, f *os.File, progress func(Progress)) error {
	body, err := s.cfg.Bucket.open(ctx, info.Name)
	if err != nil {
		return err
	}
	defer body.Close()
	sum := sha256.New()
	n, err := io.Copy(&counter{phase: "download", total: info.Size, progress: progress, w: io.MultiWriter(f, sum)}, io.LimitReader(body, info.Size+1))
	if err != nil {
		return fmt.Errorf("backup: download %s: %w", info.Name, err)
	}
	if n != info.Size || hex.EncodeToString(sum.Sum(nil)) != info.SHA256 {
		return fmt.Errorf("backup %s: %w: size or SHA-256 does not match the manifest", info.Name, ErrCorrupt)
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// openKey reads the header of the downloaded backup and unwraps its data
// key, leaving f at the first chunk.
func (s *Service) openKey(ctx context.Context, info Info, f io.Reader) ([]byte, *Header, error) {
	hdr, err := ReadHeader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("backup %s: %w", info.Name, err)
	}
	if hdr.KeyID != info.KeyID {
		return nil, nil, fmt.Errorf("backup %s: %w: header names key %s, manifest %s", info.Name, ErrCorrupt, hdr.KeyID, info.KeyID)
	}
	key, err := s.cfg.Keys.Decrypt(ctx, hdr.KeyID, hdr.WrappedKey)
	if err != nil {
		return nil, nil, fmt.Errorf("backup %s: %w", info.Name, err)
	}
	return key, hdr, nil
}

// counter reports progress of bytes written through it, at most about
// every 1% and at the end.
type counter struct {
	phase    string
	total    int64
	done     int64
	last     int64
	progress func(Progress)
	w        io.Writer
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.done += int64(n)
	if step := c.total / 100; c.done-c.last >= max(step, 1<<20) || c.done == c.total {
		c.last = c.done
		c.progress(Progress{Phase: c.phase, Done: c.done, Total: c.total})
	}
	return n, err
}
