package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	addr, err := devenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
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
		other, err := st.App.NewBackups(ctx, devenv.BackupConfig(t.TempDir(), clk.Now)) // another key file
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
				info.Name = fmt.Sprintf("vault-backups/2026/11/%02d/202611%02dT000000.000000000Z.snap.enc", i+1, i+1) // a damaged backup, named as listed
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
