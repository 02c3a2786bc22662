package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"smtp-vault/shared/pathseg"
)

// S3API is the part of the S3 client the backups bucket uses; tests wrap
// *s3.Client to make it fail halfway.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, opts ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// Prefix is where backups live in the bucket: Prefix + "2026/12/01/" +
// a timestamp + dataSuffix, and beside each its manifest.
const (
	Prefix         = "vault-backups/"
	dataSuffix     = ".snap.enc"
	manifestSuffix = ".manifest.json"
	// partSize is the multipart upload's part size: what Backup holds in
	// memory beside one chunk, whatever the snapshot's size.
	partSize = 8 << 20
)

// Info describes one complete backup: what its manifest says.
type Info struct {
	Name         string    `json:"name"` // the data object's key
	Time         time.Time `json:"time"`
	VaultVersion string    `json:"vault_version"`
	Size         int64     `json:"size"`          // bytes of the encrypted object
	SHA256       string    `json:"sha256"`        // hex SHA-256 of the encrypted object
	SnapshotSize int64     `json:"snapshot_size"` // bytes of Vault's snapshot
	KeyID        string    `json:"key_id"`
	Format       int       `json:"format"`
}

// Bucket keeps backups in S3. A backup counts as complete only once its
// manifest exists: the data object is written first and the manifest
// last, so a crash at any point leaves nothing List returns.
type Bucket struct {
	Client S3API
	Name   string
}

// nameLayout is the backup time in a data object's name.
const nameLayout = "20060102T150405.000000000Z"

// objectName is the data object's key for a backup taken at t.
func objectName(t time.Time) string {
	t = t.UTC()
	return pathseg.Must(pathseg.BackupName, Prefix+t.Format("2006/01/02/")+t.Format(nameLayout)+dataSuffix)
}

// upload is a multipart upload fed by Write, hashing what it sends.
type upload struct {
	b     *Bucket
	ctx   context.Context
	key   string
	id    *string
	buf   []byte
	parts []s3types.CompletedPart
	sum   hash.Hash
	size  int64
}

func (b *Bucket) startUpload(ctx context.Context, key string) (*upload, error) {
	out, err := b.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b.Name), Key: aws.String(key), ContentType: aws.String("application/octet-stream")})
	if err != nil {
		return nil, fmt.Errorf("backup: start upload of %s: %w", key, err)
	}
	return &upload{b: b, ctx: ctx, key: key, id: out.UploadId, buf: make([]byte, 0, partSize), sum: sha256.New()}, nil
}

func (u *upload) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), cap(u.buf)-len(u.buf))
		u.buf = append(u.buf, p[:n]...)
		p, written = p[n:], written+n
		if len(u.buf) == cap(u.buf) {
			if err := u.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (u *upload) flush() error {
	if len(u.buf) == 0 && len(u.parts) > 0 {
		return nil
	}
	n := int32(len(u.parts) + 1)
	out, err := u.b.Client.UploadPart(u.ctx, &s3.UploadPartInput{
		Bucket: aws.String(u.b.Name), Key: aws.String(u.key), UploadId: u.id,
		PartNumber: aws.Int32(n), Body: bytes.NewReader(u.buf), ContentLength: aws.Int64(int64(len(u.buf))),
	})
	if err != nil {
		return fmt.Errorf("backup: upload part %d of %s: %w", n, u.key, err)
	}
	u.sum.Write(u.buf)
	u.size += int64(len(u.buf))
	u.parts = append(u.parts, s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	u.buf = u.buf[:0]
	return nil
}

// finish uploads what is buffered and completes the upload, returning the
// object's size and hex SHA-256.
func (u *upload) finish() (int64, string, error) {
	if err := u.flush(); err != nil {
		return 0, "", err
	}
	_, err := u.b.Client.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(u.b.Name), Key: aws.String(u.key), UploadId: u.id,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: u.parts},
	})
	if err != nil {
		return 0, "", fmt.Errorf("backup: complete upload of %s: %w", u.key, err)
	}
	return u.size, hex.EncodeToString(u.sum.Sum(nil)), nil
}

// abort drops the parts uploaded so far. Best effort: the bucket's
// lifecycle rule removes what a crashed run leaves, and an incomplete
// upload is no object at all.
func (u *upload) abort() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), 10*time.Second)
	defer cancel()
	_, _ = u.b.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(u.b.Name), Key: aws.String(u.key), UploadId: u.id})
}

// putManifest writes the manifest of a data object already in the bucket:
// the last write of a backup.
func (b *Bucket) putManifest(ctx context.Context, info Info) error {
	body, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	_, err = b.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(b.Name), Key: aws.String(info.Name + manifestSuffix),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("application/json"),
	})
	if err != nil {
		return fmt.Errorf("backup: write manifest of %s: %w", info.Name, err)
	}
	return nil
}

// objects lists every key under Prefix with its size and time.
func (b *Bucket) objects(ctx context.Context) ([]s3types.Object, error) {
	var all []s3types.Object
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.Name), Prefix: aws.String(Prefix)}
	for {
		out, err := b.Client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("backup: list %s: %w", b.Name, err)
		}
		all = append(all, out.Contents...)
		if !aws.ToBool(out.IsTruncated) {
			return all, nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// List returns the complete backups, oldest first: those with a manifest
// that reads, names its own data object, and whose data object exists with
// the size the manifest records. Whether the content matches its checksum
// is checked when it is read (Service.Restore).
func (b *Bucket) List(ctx context.Context) ([]Info, error) {
	objs, err := b.objects(ctx)
	if err != nil {
		return nil, err
	}
	sizes := map[string]int64{}
	for _, o := range objs {
		sizes[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	var list []Info
	for _, o := range objs {
		key := aws.ToString(o.Key)
		if !strings.HasSuffix(key, manifestSuffix) {
			continue
		}
		info, ok, err := b.readManifest(ctx, key)
		if err != nil {
			return nil, err
		}
		if size, found := sizes[info.Name]; !ok || !found || size != info.Size || pathseg.Check(pathseg.BackupName, info.Name) != nil {
			continue
		}
		list = append(list, info)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Time.Before(list[j].Time) })
	return list, nil
}

// readManifest reads the manifest at key; ok is false when it makes no
// backup (decodeManifest), which is not an error of the listing.
func (b *Bucket) readManifest(ctx context.Context, key string) (info Info, ok bool, err error) {
	out, err := b.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.Name), Key: aws.String(key)})
	if err != nil {
		return Info{}, false, fmt.Errorf("backup: read manifest %s: %w", key, err)
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	if err != nil {
		return Info{}, false, fmt.Errorf("backup: read manifest %s: %w", key, err)
	}
	info, ok = decodeManifest(key, raw)
	return info, ok, nil
}

// decodeManifest parses the manifest stored at key. It makes a backup only
// if it names its own data object (key without manifestSuffix), taken at
// the time that name says (retention goes by the time), in this format,
// with a positive size and a SHA-256 in lowercase hex.
func decodeManifest(key string, raw []byte) (Info, bool) {
	var info Info
	if err := json.Unmarshal(raw, &info); err != nil {
		return Info{}, false
	}
	info.Time = info.Time.UTC()
	ok := info.Name+manifestSuffix == key && info.Name == objectName(info.Time) &&
		info.Format == formatVersion && info.Size > 0 && info.SnapshotSize >= 0 && validSHA256(info.SHA256)
	return info, ok
}

// validSHA256 is what hex.EncodeToString of a SHA-256 sum looks like.
func validSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// open returns the data object of a backup.
func (b *Bucket) open(ctx context.Context, name string) (io.ReadCloser, error) {
	out, err := b.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.Name), Key: aws.String(pathseg.Must(pathseg.BackupName, name))})
	if err != nil {
		return nil, fmt.Errorf("backup: read %s: %w", name, err)
	}
	return out.Body, nil
}

// remove deletes a backup: its manifest first, so that a crash between the
// two deletes leaves an orphan data object, never a manifest without data.
func (b *Bucket) remove(ctx context.Context, name string) error {
	for _, key := range []string{pathseg.Must(pathseg.BackupName, name) + manifestSuffix, name} {
		if _, err := b.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.Name), Key: aws.String(key)}); err != nil {
			return fmt.Errorf("backup: delete %s: %w", key, err)
		}
	}
	return nil
}

// orphans returns data objects without a manifest whose backup time (in
// their name) is before cutoff: what a backup that crashed after its
// upload left. Objects whose name does not parse are left alone.
func (b *Bucket) orphans(ctx context.Context, cutoff time.Time) ([]string, error) {
	objs, err := b.objects(ctx)
	if err != nil {
		return nil, err
	}
	manifests := map[string]bool{}
	for _, o := range objs {
		if k := aws.ToString(o.Key); strings.HasSuffix(k, manifestSuffix) {
			manifests[strings.TrimSuffix(k, manifestSuffix)] = true
		}
	}
	var out []string
	for _, o := range objs {
		k := aws.ToString(o.Key)
		if !strings.HasSuffix(k, dataSuffix) || manifests[k] || pathseg.Check(pathseg.BackupName, k) != nil {
			continue
		}
		t, err := time.Parse(nameLayout, strings.TrimSuffix(path.Base(k), dataSuffix))
		if err == nil && t.Before(cutoff) {
			out = append(out, k)
		}
	}
	return out, nil
}
