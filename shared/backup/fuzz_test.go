package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var fuzzKey = bytes.Repeat([]byte{9}, 32)

// sealFuzz encrypts plain with the fuzz key in chunks of chunkSize.
func sealFuzz(t testing.TB, plain []byte, chunkSize int, keyID string) []byte {
	var out bytes.Buffer
	if _, err := encrypt(&out, bytes.NewReader(plain), fuzzKey, keyID, []byte("wrapped"), chunkSize); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// open reads the header and decrypts what follows, as a restore does.
func open(b []byte) ([]byte, error) {
	r := bytes.NewReader(b)
	h, err := ReadHeader(r)
	if err != nil {
		return nil, err
	}
	var plain bytes.Buffer
	_, err = Decrypt(&plain, r, h, fuzzKey)
	return plain.Bytes(), err
}

// FuzzReadHeader: whatever an object starts with, ReadHeader refuses it as
// ErrNotBackup or ErrCorrupt, or returns a header within the format's
// bounds that is exactly the bytes it consumed, re-encoded.
func FuzzReadHeader(f *testing.F) {
	f.Add(sealFuzz(f, []byte("snapshot"), 4, "key-1"))
	f.Add(sealFuzz(f, nil, ChunkSize, "arn:aws:kms:eu-west-1:123456789012:key/x"))
	f.Add([]byte(magic))
	f.Add([]byte(magic + "\x01\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte(magic + "\x01\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte(magic + "\x02\x00\x10\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		h, err := ReadHeader(r)
		if err != nil {
			if !errors.Is(err, ErrNotBackup) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ReadHeader error %v is neither ErrNotBackup nor ErrCorrupt", err)
			}
			return
		}
		consumed := len(data) - r.Len()
		if !bytes.Equal(h.raw, data[:consumed]) {
			t.Fatalf("header raw %x is not the %d bytes read", h.raw, consumed)
		}
		if h.ChunkSize < 1 || h.ChunkSize > maxChunkSize || len(h.KeyID) > maxKeyID || len(h.WrappedKey) > maxWrapped {
			t.Fatalf("header out of bounds: chunk %d, key id %d bytes, wrapped %d bytes", h.ChunkSize, len(h.KeyID), len(h.WrappedKey))
		}
		again, err := h.marshal()
		if err != nil || !bytes.Equal(again, h.raw) {
			t.Fatalf("header re-encodes as %x (%v), read from %x", again, err, h.raw)
		}
	})
}

// FuzzBackupChunks: a backup of any content in chunks of any size opens
// to that content; one changed byte, a cut anywhere or bytes appended,
// and it does not open (ErrCorrupt or ErrNotBackup), whatever the edit.
// Chunk sizes are small so that a few bytes make many chunks.
func FuzzBackupChunks(f *testing.F) {
	f.Add([]byte("raft snapshot"), uint8(4), uint16(0), uint8(1), uint8(0))
	f.Add([]byte(""), uint8(1), uint16(3), uint8(0), uint8(1))
	f.Add([]byte("exactly8"), uint8(8), uint16(40), uint8(0), uint8(2))
	f.Add(bytes.Repeat([]byte{0xAA}, 100), uint8(7), uint16(90), uint8(0x80), uint8(3))
	f.Fuzz(func(t *testing.T, plain []byte, chunk uint8, at uint16, flip uint8, mode uint8) {
		chunkSize := int(chunk%32) + 1
		sealed := sealFuzz(t, plain, chunkSize, "key-1")
		got, err := open(sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("a backup does not open to its content: %v", err)
		}
		edited := bytes.Clone(sealed)
		pos := int(at) % len(sealed)
		switch mode % 4 {
		case 0: // a changed byte
			if flip == 0 {
				flip = 1
			}
			edited[pos] ^= flip
		case 1: // cut
			edited = edited[:pos]
		case 2: // bytes appended
			edited = append(edited, bytes.Repeat([]byte{flip}, int(at%64)+1)...)
		case 3: // a chunk's worth of bytes removed in the middle
			end := min(len(edited), pos+chunkSize+tagSize)
			edited = append(edited[:pos:pos], edited[end:]...)
		}
		if bytes.Equal(edited, sealed) {
			return
		}
		if _, err := open(edited); err == nil {
			t.Fatalf("an edited backup opened (mode %d at %d)", mode%4, pos)
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotBackup) {
			t.Fatalf("an edited backup fails with %v, not ErrCorrupt or ErrNotBackup", err)
		}
	})
}

// FuzzManifest: whatever a manifest object holds, decodeManifest takes it
// for a backup only when it names its own data object under Prefix, at
// the time its name says, in this format, with a SHA-256 in hex; what it
// takes survives encoding again unchanged.
func FuzzManifest(f *testing.F) {
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 123456789, time.UTC)
	good := Info{Name: objectName(t0), Time: t0, VaultVersion: "1.21.0", Size: 1234, SHA256: strings.Repeat("ab", 32), SnapshotSize: 1000, KeyID: "k", Format: formatVersion}
	raw, _ := json.MarshalIndent(good, "", "  ")
	f.Add(good.Name+manifestSuffix, raw)
	f.Add(good.Name+manifestSuffix, []byte(strings.Replace(string(raw), "ab", "zz", 1)))
	f.Add(good.Name+manifestSuffix, []byte(strings.Replace(string(raw), `"format": 1`, `"format": 2`, 1)))
	f.Add("vault-backups/x.manifest.json", []byte(`{"name":"vault-backups/x","size":1,"sha256":"`+strings.Repeat("0", 64)+`"}`))
	f.Add(good.Name+manifestSuffix, []byte(`null`))
	f.Fuzz(func(t *testing.T, key string, raw []byte) {
		info, ok := decodeManifest(key, raw)
		if !ok {
			return
		}
		if info.Name+manifestSuffix != key || !strings.HasPrefix(info.Name, Prefix) {
			t.Fatalf("manifest %q names %q", key, info.Name)
		}
		if info.Name != objectName(info.Time) {
			t.Fatalf("manifest of %q says it was taken at %v", info.Name, info.Time)
		}
		if info.Format != formatVersion || info.Size <= 0 || info.SnapshotSize < 0 || !validSHA256(info.SHA256) {
			t.Fatalf("manifest accepted with format %d, size %d, snapshot size %d, sha256 %q", info.Format, info.Size, info.SnapshotSize, info.SHA256)
		}
		again, _ := json.Marshal(info)
		if back, ok := decodeManifest(key, again); !ok || back != info {
			t.Fatalf("manifest does not survive encoding: %+v, then %+v (%v)", info, back, ok)
		}
	})
}
