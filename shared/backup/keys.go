package backup

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeySource issues and unwraps the data key of each backup. The key that
// wraps data keys must live outside the Vault being backed up: a backup
// that only opens with a key kept in that Vault is lost with it.
type KeySource interface {
	// GenerateDataKey returns a fresh 32-byte data key, the same key
	// wrapped, and the id of the wrapping key.
	GenerateDataKey(ctx context.Context) (plain, wrapped []byte, keyID string, err error)
	// Decrypt unwraps a data key GenerateDataKey made under keyID. A key
	// that does not open is ErrWrongKey.
	Decrypt(ctx context.Context, keyID string, wrapped []byte) ([]byte, error)
}

// KeyContext binds wrapped data keys to their purpose (in KMS, the
// "purpose" encryption context the template's grant requires), so a data key
// wrapped for something else under the same master key does not open here.
const KeyContext = "smtp-vault vault-backup data key v1"

// KeyFile is the local KeySource: a 32-byte key in a file (mode 0600),
// wrapping data keys with AES-256-GCM. Locally it stands where KMS stands
// in AWS; keep the file outside Vault's data directory and back it up
// separately.
type KeyFile struct {
	id  string
	gcm cipher.AEAD
}

// OpenKeyFile reads the key at path, creating it (32 random bytes, mode
// 0600, parent folders 0700) if it does not exist yet.
func OpenKeyFile(path string) (*KeyFile, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("backup: key file: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("backup: key file %s: holds %d bytes, want 32", path, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("backup: key file: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("backup: key file: %w", err)
	}
	// The id names the key without revealing it: a hash of it.
	sum := sha256.Sum256(append([]byte("smtp-vault backup key id\x00"), key...))
	return &KeyFile{id: "local:" + hex.EncodeToString(sum[:8]), gcm: gcm}, nil
}

func createKeyFile(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it meanwhile: use theirs.
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// ID is the key's id, as recorded in each backup's header and manifest.
func (k *KeyFile) ID() string { return k.id }

// GenerateDataKey implements KeySource.
func (k *KeyFile) GenerateDataKey(context.Context) ([]byte, []byte, string, error) {
	plain := make([]byte, 32)
	if _, err := rand.Read(plain); err != nil {
		return nil, nil, "", err
	}
	nonce := make([]byte, k.gcm.NonceSize(), k.gcm.NonceSize()+len(plain)+k.gcm.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, "", err
	}
	wrapped := k.gcm.Seal(nonce, nonce, plain, []byte(KeyContext+"\x00"+k.id))
	return plain, wrapped, k.id, nil
}

// Decrypt implements KeySource.
func (k *KeyFile) Decrypt(_ context.Context, keyID string, wrapped []byte) ([]byte, error) {
	if keyID != k.id {
		return nil, fmt.Errorf("%w: the backup was made under key %s, this key file is %s", ErrWrongKey, keyID, k.id)
	}
	ns := k.gcm.NonceSize()
	if len(wrapped) < ns+k.gcm.Overhead() {
		return nil, fmt.Errorf("%w: wrapped key too short", ErrWrongKey)
	}
	plain, err := k.gcm.Open(nil, wrapped[:ns], wrapped[ns:], []byte(KeyContext+"\x00"+k.id))
	if err != nil {
		return nil, fmt.Errorf("%w: key %s does not open the data key", ErrWrongKey, keyID)
	}
	return plain, nil
}
