package backup

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMSAPI is the part of the KMS client the key source calls.
type KMSAPI interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, opts ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// KMS is the KeySource in AWS: data keys from GenerateDataKey under one
// customer managed key, with an encryption context naming their purpose.
type KMS struct {
	Client KMSAPI
	KeyID  string // key id, ARN or alias of the backups' KMS key
}

func (k KMS) encryptionContext() map[string]string {
	return map[string]string{"purpose": KeyContext}
}

// GenerateDataKey implements KeySource; the key id returned is the key's
// ARN, as KMS reports it.
func (k KMS) GenerateDataKey(ctx context.Context) ([]byte, []byte, string, error) {
	out, err := k.Client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(k.KeyID),
		KeySpec:           kmstypes.DataKeySpecAes256,
		EncryptionContext: k.encryptionContext(),
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("backup: kms generate data key: %w", err)
	}
	return out.Plaintext, out.CiphertextBlob, aws.ToString(out.KeyId), nil
}

// Decrypt implements KeySource. KMS refusing the ciphertext (another key,
// another context, a damaged blob) is ErrWrongKey; anything else (network,
// permissions) is returned as it is.
func (k KMS) Decrypt(ctx context.Context, keyID string, wrapped []byte) ([]byte, error) {
	out, err := k.Client.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    wrapped,
		KeyId:             aws.String(keyID),
		EncryptionContext: k.encryptionContext(),
	})
	var invalid *kmstypes.InvalidCiphertextException
	var incorrect *kmstypes.IncorrectKeyException
	switch {
	case errors.As(err, &invalid) || errors.As(err, &incorrect):
		return nil, fmt.Errorf("%w: kms: %w", ErrWrongKey, err)
	case err != nil:
		return nil, fmt.Errorf("backup: kms decrypt: %w", err)
	}
	return out.Plaintext, nil
}
