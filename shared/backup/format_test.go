package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"smtp-vault/shared/backup"
)

func keyFile(t testing.TB) *backup.KeyFile {
	t.Helper()
	k, err := backup.OpenKeyFile(filepath.Join(t.TempDir(), "backup.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// seal encrypts plain under a fresh data key of keys.
func seal(t testing.TB, keys backup.KeySource, plain []byte) []byte {
	t.Helper()
	key, wrapped, id, err := keys.GenerateDataKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n, err := backup.Encrypt(&out, bytes.NewReader(plain), key, id, wrapped)
	if err != nil || n != int64(len(plain)) {
		t.Fatalf("encrypt: n=%d err=%v", n, err)
	}
	return out.Bytes()
}

// open authenticates and decrypts sealed with keys.
func open(keys backup.KeySource, sealed []byte) ([]byte, error) {
	r := bytes.NewReader(sealed)
	h, err := backup.ReadHeader(r)
	if err != nil {
		return nil, err
	}
	key, err := keys.Decrypt(context.Background(), h.KeyID, h.WrappedKey)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = backup.Decrypt(&out, r, h, key)
	return out.Bytes(), err
}

func random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestRoundTrip(t *testing.T) {
	keys := keyFile(t)
	for _, n := range []int{0, 1, backup.ChunkSize - 1, backup.ChunkSize, backup.ChunkSize + 1, 3 * backup.ChunkSize, 3*backup.ChunkSize + 77} {
		plain := random(t, n)
		got, err := open(keys, seal(t, keys, plain))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: round trip failed: %v", n, err)
		}
	}
}

// TestRefused: every way a backup can be damaged or foreign is detected,
// with the error that names it.
func TestRefused(t *testing.T) {
	keys := keyFile(t)
	plain := random(t, 3*backup.ChunkSize+100)
	sealed := seal(t, keys, plain)
	other := seal(t, keys, plain) // same content, other data key and nonces
	hdrLen := len(sealed) - (3*(backup.ChunkSize+16) + 100 + 16)
	chunk := func(b []byte, i int) []byte {
		return b[hdrLen+i*(backup.ChunkSize+16) : hdrLen+(i+1)*(backup.ChunkSize+16)]
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(sealed)) }

	cases := []struct {
		name   string
		data   []byte
		keys   backup.KeySource
		reason error
	}{
		{"flipped bit in a chunk", mutate(func(b []byte) []byte { b[hdrLen+backup.ChunkSize+5] ^= 1; return b }), keys, backup.ErrCorrupt},
		{"flipped bit in the nonce prefix", mutate(func(b []byte) []byte { b[hdrLen-1] ^= 1; return b }), keys, backup.ErrCorrupt},
		{"truncated at a chunk boundary", sealed[:hdrLen+2*(backup.ChunkSize+16)], keys, backup.ErrCorrupt},
		{"truncated inside the last chunk", sealed[:len(sealed)-1], keys, backup.ErrCorrupt},
		{"truncated inside a chunk", sealed[:hdrLen+backup.ChunkSize], keys, backup.ErrCorrupt},
		{"only the header", sealed[:hdrLen], keys, backup.ErrCorrupt},
		{"header cut", sealed[:hdrLen-3], keys, backup.ErrCorrupt},
		{"data appended", append(bytes.Clone(sealed), 0), keys, backup.ErrCorrupt},
		{"chunks swapped", mutate(func(b []byte) []byte {
			c0, c1 := bytes.Clone(chunk(b, 0)), bytes.Clone(chunk(b, 1))
			copy(chunk(b, 0), c1)
			copy(chunk(b, 1), c0)
			return b
		}), keys, backup.ErrCorrupt},
		{"a chunk from another backup", mutate(func(b []byte) []byte { copy(chunk(b, 1), chunk(other, 1)); return b }), keys, backup.ErrCorrupt},
		{"chunk dropped", append(bytes.Clone(sealed[:hdrLen+backup.ChunkSize+16]), sealed[hdrLen+2*(backup.ChunkSize+16):]...), keys, backup.ErrCorrupt},
		{"wrong key file", sealed, keyFile(t), backup.ErrWrongKey},
		{"foreign file", random(t, 4096), keys, backup.ErrNotBackup},
		{"empty file", nil, keys, backup.ErrNotBackup},
		{"gzip file", append([]byte{0x1f, 0x8b, 8, 0}, random(t, 100)...), keys, backup.ErrNotBackup},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := open(c.keys, c.data)
			if !errors.Is(err, c.reason) {
				t.Fatalf("got %v, want %v", err, c.reason)
			}
		})
	}
}

func TestKeyFileIsPrivateAndStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "backup.key")
	k1, err := backup.OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("key file: %v %v", st.Mode(), err)
	}
	k2, err := backup.OpenKeyFile(path)
	if err != nil || k2.ID() != k1.ID() {
		t.Fatalf("reopened key file has id %s, want %s (%v)", k2.ID(), k1.ID(), err)
	}
	sealed := seal(t, k1, []byte("snapshot"))
	if got, err := open(k2, sealed); err != nil || string(got) != "snapshot" {
		t.Fatalf("reopened key does not open: %v", err)
	}
	if bytes.Contains(sealed, mustRead(t, path)) {
		t.Fatal("the key file's key is in the backup")
	}
}

// zeros is an endless stream of zeros of a given length without holding it.
type zeros struct{ left int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.left))
	clear(p[:n])
	z.left -= int64(n)
	return n, nil
}

// TestMemoryFlat: encrypting and decrypting 256 MiB through pipes keeps
// the heap within a few chunks.
func TestMemoryFlat(t *testing.T) {
	keys := keyFile(t)
	key, wrapped, id, err := keys.GenerateDataKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const size = 256 << 20
	pr, pw := io.Pipe()
	go func() {
		_, err := backup.Encrypt(pw, &zeros{left: size}, key, id, wrapped)
		pw.CloseWithError(err)
	}()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			default:
			}
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			runtime.Gosched()
		}
	}()
	h, err := backup.ReadHeader(pr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := backup.Decrypt(io.Discard, pr, h, key)
	close(done)
	if err != nil || n != size {
		t.Fatalf("decrypt: n=%d err=%v", n, err)
	}
	grew, limit := peak-min(peak, base.HeapInuse), uint64(8<<20)
	t.Logf("heap in use grew by %d KiB while %d MiB went through", grew>>10, size>>20)
	if grew > limit {
		t.Fatalf("heap in use grew by %d MiB for a %d MiB stream; want under %d MiB", grew>>20, size>>20, limit>>20)
	}
}

func BenchmarkEncryptDecrypt(b *testing.B) {
	keys := keyFile(b)
	key, wrapped, id, _ := keys.GenerateDataKey(context.Background())
	const size = 64 << 20
	b.SetBytes(size)
	for b.Loop() {
		pr, pw := io.Pipe()
		go func() {
			_, err := backup.Encrypt(pw, &zeros{left: size}, key, id, wrapped)
			pw.CloseWithError(err)
		}()
		h, err := backup.ReadHeader(pr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := backup.Decrypt(io.Discard, pr, h, key); err != nil {
			b.Fatal(err)
		}
	}
}
