package backup_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"smtp-vault/shared/backup"
)

// fakeKMS wraps data keys with AES-GCM under its own key and binds them
// to the encryption context, as KMS does.
type fakeKMS struct {
	gcm cipher.AEAD
	ctx map[string]string
}

func newFakeKMS(t *testing.T) *fakeKMS {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(b)
	return &fakeKMS{gcm: g}
}

func (f *fakeKMS) GenerateDataKey(_ context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	if in.KeySpec != kmstypes.DataKeySpecAes256 {
		return nil, errors.New("want AES_256")
	}
	f.ctx = maps.Clone(in.EncryptionContext)
	plain := make([]byte, 32)
	rand.Read(plain)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	blob := f.gcm.Seal(nonce, nonce, plain, []byte(in.EncryptionContext["purpose"]))
	return &kms.GenerateDataKeyOutput{Plaintext: plain, CiphertextBlob: blob, KeyId: aws.String("arn:aws:kms:eu-central-1:123456789012:key/test")}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	b := in.CiphertextBlob
	if len(b) < 12 {
		return nil, &kmstypes.InvalidCiphertextException{}
	}
	plain, err := f.gcm.Open(nil, b[:12], b[12:], []byte(in.EncryptionContext["purpose"]))
	if err != nil {
		return nil, &kmstypes.InvalidCiphertextException{}
	}
	return &kms.DecryptOutput{Plaintext: plain}, nil
}

func TestKMSKeySource(t *testing.T) {
	f := newFakeKMS(t)
	k := backup.KMS{Client: f, KeyID: "alias/backups"}
	plain := []byte("a Vault snapshot")
	sealed := seal(t, k, plain)
	if f.ctx["purpose"] == "" {
		t.Fatal("no encryption context on GenerateDataKey")
	}
	got, err := open(k, sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip through KMS: %v", err)
	}
	if _, err := open(backup.KMS{Client: newFakeKMS(t), KeyID: "alias/other"}, sealed); !errors.Is(err, backup.ErrWrongKey) {
		t.Fatalf("another KMS key: got %v, want ErrWrongKey", err)
	}
}
