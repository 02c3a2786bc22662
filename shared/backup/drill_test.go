package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/app"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/backup"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/vault"
)

// clock is the backups' clock in these tests, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestDisasterRecovery backs up a Vault holding three tenants into the
// local backups bucket, shows that damaged, foreign and wrong-key backups
// are refused without touching a fresh Vault, that a crashed backup run
// leaves nothing a restore would take, and restores into the fresh Vault:
// unsealed with the original unseal key, every credential decrypts and
// logs in over SMTP, and the restore is audited.
func TestDisasterRecovery(t *testing.T) {
	st := devenv.StartTestStack(t, 3)
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}
	bc := devenv.BackupConfig(t.TempDir(), clk.Now)
	bc.UnsealWait = time.Minute
	// The fresh Vault's address, named in the function's configuration.
	addr, err := devenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	bc.RestoreTargets = []string{"http://" + addr}
	b, err := st.App.NewBackups(ctx, bc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Service.Backup(ctx)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if want := "vault-backups/2026/12/01/"; !strings.HasPrefix(res.Backup.Name, want) || res.Backup.VaultVersion == "" || res.Backup.SnapshotSize == 0 || !strings.HasPrefix(res.Backup.KeyID, "local:") {
		t.Fatalf("backup info %+v", res.Backup)
	}
	s3c := st.S3.Client()
	good := getObject(t, s3c, res.Backup.Name)
	if bytes.Contains(good, []byte("smtp-credentials")) || bytes.Contains(good, []byte(st.Tenants[0].TenantID)) {
		t.Fatal("the backup object holds Vault's data in the clear")
	}

	// The fresh Vault, with a marker that must survive every refusal.
	dir := t.TempDir()
	fresh, err := devenv.StartVault(ctx, dir, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Stop() })
	freshToken := fresh.Root().Token()
	if _, err := fresh.Root().Logical().Write("smtp/data/marker/admin", map[string]any{"data": map[string]any{"v": "fresh"}, "options": map[string]any{"cas": 0}}); err != nil {
		t.Fatal(err)
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		s, err := fresh.Root().Logical().Read("smtp/data/marker/admin")
		if err != nil || s == nil {
			t.Fatalf("the fresh Vault changed: marker %v %v", s, err)
		}
	}
	req := app.RestoreRequest{TargetAddr: fresh.Addr, TargetToken: freshToken, RequestedBy: "test:drill"}

	t.Run("refused backups change nothing", func(t *testing.T) {
		otherConfig := devenv.BackupConfig(t.TempDir(), clk.Now) // another key file
		otherConfig.RestoreTargets = bc.RestoreTargets
		other, err := st.App.NewBackups(ctx, otherConfig)
		if err != nil {
			t.Fatal(err)
		}
		hdr := headerLen(t, good)
		flip := func(at int) []byte { c := bytes.Clone(good); c[at] ^= 1; return c }
		cases := []struct {
			name     string
			data     []byte
			manifest bool // manifest rewritten to match the damaged object
			using    *app.Backups
			want     error
		}{
			{"bit flipped, manifest unchanged", flip(hdr + 10), false, b, backup.ErrCorrupt},
			{"bit flipped in a chunk, checksum forged", flip(hdr + 10), true, b, backup.ErrCorrupt},
			{"bit flipped in the header, checksum forged", flip(hdr - 2), true, b, backup.ErrCorrupt},
			{"truncated, checksum forged", good[:len(good)-7], true, b, backup.ErrCorrupt},
			{"truncated to the header, checksum forged", good[:hdr], true, b, backup.ErrCorrupt},
			{"wrong key", good, true, other, backup.ErrWrongKey},
			{"foreign file", []byte("PK\x03\x04 a zip archive, not a backup"), true, b, backup.ErrNotBackup},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				info := res.Backup
				// A name of the form Backup gives, at the time its manifest says.
				info.Time = time.Date(2026, 11, i+1, 2, 0, 0, 0, time.UTC)
				info.Name = "vault-backups/" + info.Time.Format("2006/01/02/20060102T150405.000000000Z") + ".snap.enc"
				putObject(t, s3c, info.Name, c.data)
				if c.manifest {
					info.Size, info.SHA256 = int64(len(c.data)), sha(c.data)
				}
				putObject(t, s3c, info.Name+".manifest.json", mustJSON(t, info))
				r := req
				r.Backup = info.Name
				_, _, err := c.using.Restore(ctx, r, nil, nil)
				if !errors.Is(err, c.want) {
					t.Fatalf("restore: got %v, want %v", err, c.want)
				}
				unchanged(t)
				deleteObjects(t, s3c, info.Name, info.Name+".manifest.json")
			})
		}
		if strings.Contains(st.AuditLog.String(), audit.VaultRestoredFromBackup) {
			t.Fatal("a refused restore was audited as a restore")
		}
	})

	t.Run("crash mid-upload leaves no complete backup", func(t *testing.T) {
		before, err := b.Service.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, crash := range []string{"UploadPart", "CompleteMultipartUpload", "PutObject"} {
			clk.Add(time.Minute)
			crashed := backup.New(backup.Config{
				Vault: st.App.Vault, Keys: mustKeyFile(t, bc.KeyFile), Now: clk.Now,
				Bucket: &backup.Bucket{Client: &crashingS3{S3API: s3c, at: crash}, Name: bc.Bucket},
			})
			if _, err := crashed.Backup(ctx); !errors.Is(err, errCrash) {
				t.Fatalf("crash at %s: backup returned %v", crash, err)
			}
			after, err := b.Service.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(before, after, func(a, b backup.Info) bool { return a.Name == b.Name }) {
				t.Fatalf("crash at %s: complete backups went from %v to %v", crash, before, after)
			}
			if latest, err := b.Service.Latest(ctx); err != nil || latest.Name != res.Backup.Name {
				t.Fatalf("crash at %s: latest is %v (%v), want %s", crash, latest.Name, err, res.Backup.Name)
			}
		}
		// The crash after the upload left a data object without manifest;
		// a day later the next run removes it.
		clk.Add(25 * time.Hour)
		next, err := b.Service.Backup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(next.Deleted) != 1 || !strings.HasSuffix(next.Deleted[0], ".snap.enc") {
			t.Fatalf("next run deleted %v, want the crashed run's orphan", next.Deleted)
		}
		deleteObjects(t, s3c, next.Backup.Name+".manifest.json", next.Backup.Name)
	})

	t.Run("restore into the fresh Vault", func(t *testing.T) {
		// The original Vault is gone: only the backup, the key file and
		// the original unseal key remain.
		st.Vault.Stop()
		key := st.Vault.UnsealKey()
		unseal := func(ctx context.Context, v *vault.Client) error {
			sealed, err := v.Unseal(ctx, key)
			if err == nil && sealed {
				err = errors.New("still sealed")
			}
			return err
		}
		var phases []string
		r := req
		r.Backup, r.SMTPLogin = "latest", true
		rep, checks, err := b.Restore(ctx, r, unseal, func(p backup.Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		})
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if !slices.Equal(phases, []string{"download", "verify", "restore"}) {
			t.Fatalf("progress phases %v", phases)
		}
		if rep.Backup.Name != res.Backup.Name || rep.Verification == nil || rep.Verification.Tenants != 3 || rep.Verification.Decrypted != 3 || len(rep.Verification.Failed) != 0 {
			t.Fatalf("report %+v %+v", rep, rep.Verification)
		}
		for _, c := range checks {
			if !c.Decrypted || c.LoggedIn == nil || !*c.LoggedIn {
				t.Fatalf("tenant %s: %+v", c.TenantID, c)
			}
		}
		// The fresh Vault now answers the original's root token, holds the
		// tenants and lost its own data.
		orig, err := st.Vault.Root().Clone()
		if err != nil {
			t.Fatal(err)
		}
		orig.SetAddress(fresh.Addr)
		orig.SetToken(st.Vault.Root().Token())
		if s, err := orig.Logical().Read("smtp/data/" + st.Tenants[0].TenantID + "/admin"); err != nil || s == nil {
			t.Fatalf("restored tenant record: %v %v", s, err)
		}
		if s, err := orig.Logical().Read("smtp/data/marker/admin"); err != nil || s != nil {
			t.Fatalf("the fresh Vault's own data survived the restore: %v %v", s, err)
		}
		if !strings.Contains(st.AuditLog.String(), `"event":"`+audit.VaultRestoredFromBackup+`"`) {
			t.Fatalf("restore not audited:\n%s", st.AuditLog.String())
		}
	})
}

// TestRestoreSendsOnlyToANamedTargetAndRecordsFirst: a decrypted snapshot
// (and the function's own Vault login after it) goes only to a Vault the
// function's configuration names, over https or on loopback, for a
// restore that says who asked; and the restore is on the audit trail
// before anything is sent: when it cannot be recorded, nothing is.
func TestRestoreSendsOnlyToANamedTargetAndRecordsFirst(t *testing.T) {
	st := devenv.StartTestStack(t, 1)
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}
	addr, err := devenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := devenv.StartVault(ctx, t.TempDir(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Stop() })
	if _, err := fresh.Root().Logical().Write("smtp/data/marker/admin", map[string]any{"data": map[string]any{"v": "fresh"}, "options": map[string]any{"cas": 0}}); err != nil {
		t.Fatal(err)
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if s, err := fresh.Root().Logical().Read("smtp/data/marker/admin"); err != nil || s == nil {
			t.Fatalf("the fresh Vault changed: marker %v %v", s, err)
		}
	}
	bc := devenv.BackupConfig(t.TempDir(), clk.Now)
	bc.RestoreTargets = []string{fresh.Addr, "https://vault-dr.example.test:8200"}
	b, err := st.App.NewBackups(ctx, bc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Service.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	good := app.RestoreRequest{Backup: res.Backup.Name, TargetAddr: fresh.Addr, TargetToken: fresh.Root().Token(), RequestedBy: "test:targets"}
	for name, edit := range map[string]func(r *app.RestoreRequest){
		"http, not loopback":             func(r *app.RestoreRequest) { r.TargetAddr = "http://vault-dr.example.test:8200" },
		"https, not configured":          func(r *app.RestoreRequest) { r.TargetAddr = "https://attacker.example.test:8200" },
		"loopback, not configured":       func(r *app.RestoreRequest) { r.TargetAddr = "http://127.0.0.1:1" },
		"the configured one with a path": func(r *app.RestoreRequest) { r.TargetAddr = fresh.Addr + "/v1/sys/storage/raft/snapshot-force" },
		"no requested_by":                func(r *app.RestoreRequest) { r.RequestedBy = "" },
		"blank requested_by":             func(r *app.RestoreRequest) { r.RequestedBy = "  " },
	} {
		t.Run(name, func(t *testing.T) {
			r := good
			edit(&r)
			if _, _, err := b.Restore(ctx, r, nil, nil); !errors.Is(err, credential.ErrInvalidInput) {
				t.Fatalf("restore: %v, want ErrInvalidInput", err)
			}
			unchanged(t)
			if strings.Contains(st.AuditLog.String(), audit.VaultRestoreStarted) {
				t.Fatal("a refused restore was recorded as started")
			}
		})
	}

	kf, err := backup.OpenKeyFile(bc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	service := func(rec backup.Recorder) *backup.Service {
		return backup.New(backup.Config{Vault: st.App.Vault, Keys: kf, Bucket: &backup.Bucket{Client: st.S3.Client(), Name: devenv.BackupBucket}, Audit: rec, Now: clk.Now})
	}
	t.Run("the trail cannot be written: nothing is sent", func(t *testing.T) {
		target := &spyTarget{}
		_, err := service(failingRecorder{}).Restore(ctx, backup.RestoreOptions{Backup: res.Backup.Name, Target: target, Actor: "test:targets", TargetAddr: fresh.Addr})
		if err == nil || target.called {
			t.Fatalf("restore with the trail down: %v, target called %v", err, target.called)
		}
	})
	t.Run("recorded before the snapshot goes", func(t *testing.T) {
		rec := &memRecorder{}
		target := &spyTarget{}
		target.before = func() { target.seen = rec.events() }
		if _, err := service(rec).Restore(ctx, backup.RestoreOptions{Backup: res.Backup.Name, Target: target, Actor: "test:targets", TargetAddr: fresh.Addr}); err != nil {
			t.Fatal(err)
		}
		if len(target.seen) != 1 || target.seen[0].Event != audit.VaultRestoreStarted || target.seen[0].UserID != "test:targets" || target.seen[0].Details["target_vault_addr"] != fresh.Addr {
			t.Fatalf("when the snapshot was sent, the trail held %+v", target.seen)
		}
	})
	// The configured target, by the backup function with its own Vault
	// identity: the check after the restore logs in to the restored Vault
	// with that identity, lists the tenants and opens every credential.
	t.Run("into the named target, checked with the backup identity", func(t *testing.T) {
		own, err := st.Apps["backup"].NewBackups(ctx, bc)
		if err != nil {
			t.Fatal(err)
		}
		key := st.Vault.UnsealKey()
		unseal := func(ctx context.Context, v *vault.Client) error {
			_, err := v.Unseal(ctx, key)
			return err
		}
		rep, _, err := own.Restore(ctx, good, unseal, nil)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if v := rep.Verification; v == nil || v.Tenants != 1 || v.Decrypted != 1 {
			t.Fatalf("the check with the backup identity: %+v", rep.Verification)
		}
		if !strings.Contains(st.AuditLog.String(), `"event":"`+audit.VaultRestoreStarted+`"`) {
			t.Fatal("the restore was not recorded as started")
		}
	})
}

// spyTarget stands in for a target Vault: it notes what the trail held
// when the snapshot arrived, and reads it to the end.
type spyTarget struct {
	called bool
	before func()
	seen   []audit.Event
}

func (s *spyTarget) RestoreSnapshot(_ context.Context, r io.Reader) error {
	s.called = true
	if s.before != nil {
		s.before()
	}
	_, err := io.Copy(io.Discard, r)
	return err
}

type failingRecorder struct{}

func (failingRecorder) Record(context.Context, audit.Event) error {
	return errors.New("audit bucket down")
}

type memRecorder struct {
	mu  sync.Mutex
	all []audit.Event
}

func (m *memRecorder) Record(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.all = append(m.all, e)
	return nil
}

func (m *memRecorder) events() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.all)
}

// TestRetentionInTheBucket: a month and a half of nightly backups through
// the real bucket leaves exactly what Retain keeps.
func TestRetentionInTheBucket(t *testing.T) {
	st := devenv.StartTestStack(t, 1)
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 10, 20, 2, 0, 0, 0, time.UTC)}
	b, err := st.App.NewBackups(ctx, devenv.BackupConfig(t.TempDir(), clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if h := b.VaultHealth(ctx); h.BackupColour != backup.ColourNone || h.LastBackup != nil || len(h.Errors) != 0 {
		t.Fatalf("health before any backup: %+v", h)
	}
	var all []backup.Info
	for range 45 {
		res, err := b.Service.Backup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, res.Backup)
		clk.Add(24 * time.Hour)
	}
	want, _ := backup.Retain(all, clk.Now().Add(-24*time.Hour))
	got, err := b.Service.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := func(l []backup.Info) []string {
		var n []string
		for _, i := range l {
			n = append(n, i.Name)
		}
		slices.Sort(n)
		return n
	}
	if !slices.Equal(names(got), names(want)) || len(got) != 31 {
		t.Fatalf("bucket holds %d backups %v\nwant 31: %v", len(got), names(got), names(want))
	}
	if objs := listKeys(t, st.S3.Client()); len(objs) != 2*len(got) {
		t.Fatalf("bucket holds %d objects for %d backups: %v", len(objs), len(got), objs)
	}
	// The clock is a day after the last backup: amber; an hour earlier
	// green, a day later red.
	for _, c := range []struct {
		shift time.Duration
		want  string
	}{{0, backup.ColourAmber}, {-time.Hour, backup.ColourGreen}, {25 * time.Hour, backup.ColourRed}} {
		clk.Add(c.shift)
		h := b.VaultHealth(ctx)
		if h.Sealed || h.BackupColour != c.want || len(h.Peers) != 1 || h.Leader == "" || len(h.Errors) != 0 || h.LastBackup.Name != all[len(all)-1].Name {
			t.Fatalf("health at %v after the last backup: %+v, want colour %s", h.BackupAge, h, c.want)
		}
	}
}

var errCrash = errors.New("simulated crash")

// crashingS3 fails at one call as if the process died there: it does not
// abort the multipart upload (a dead process cannot).
type crashingS3 struct {
	backup.S3API
	at string
}

func (c *crashingS3) UploadPart(ctx context.Context, in *s3.UploadPartInput, o ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if c.at == "UploadPart" {
		return nil, errCrash
	}
	return c.S3API.UploadPart(ctx, in, o...)
}

func (c *crashingS3) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, o ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	if c.at == "CompleteMultipartUpload" {
		return nil, errCrash
	}
	return c.S3API.CompleteMultipartUpload(ctx, in, o...)
}

func (c *crashingS3) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if c.at == "PutObject" {
		return nil, errCrash
	}
	return c.S3API.PutObject(ctx, in, o...)
}

func (c *crashingS3) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return &s3.AbortMultipartUploadOutput{}, nil
}

func mustKeyFile(t *testing.T, path string) *backup.KeyFile {
	t.Helper()
	k, err := backup.OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// headerLen is the length of a backup's header.
func headerLen(t *testing.T, b []byte) int {
	t.Helper()
	r := bytes.NewReader(b)
	if _, err := backup.ReadHeader(r); err != nil {
		t.Fatal(err)
	}
	return len(b) - r.Len()
}

func getObject(t *testing.T, c *s3.Client, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(devenv.BackupBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putObject(t *testing.T, c *s3.Client, key string, body []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(devenv.BackupBucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func deleteObjects(t *testing.T, c *s3.Client, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(devenv.BackupBucket), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
}

func listKeys(t *testing.T, c *s3.Client) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(devenv.BackupBucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
