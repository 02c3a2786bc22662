package alert

import (
	"context"
	"errors"
	"strconv"

	"smtp-vault/shared/vault"
)

// State is where the rules keep their counters: a store every function
// instance sees, changed only with check-and-set, so that two instances
// counting the same user never lose an event. BucketState (an S3 bucket,
// what template.yaml deploys) and VaultState (a KV v2 mount) implement it.
type State interface {
	// Read returns the record at key and its version; a record that does
	// not exist is empty, with version "".
	Read(ctx context.Context, key string) (data map[string]string, version string, err error)
	// Write replaces the record if it is still at version ("": if it does
	// not exist) and returns the new version; otherwise ErrConflict.
	Write(ctx context.Context, key string, data map[string]string, version string) (string, error)
}

// ErrConflict is a Write that lost a race: the record changed (or
// appeared, or expired) since it was read.
var ErrConflict = errors.New("alert state: the record changed meanwhile")

// Vault is the KV v2 access VaultState needs; *vault.Client implements it.
type Vault interface {
	ReadKV(ctx context.Context, mount, path string) (*vault.Secret, error)
	WriteKVCAS(ctx context.Context, mount, path string, data map[string]string, cas int) (int, error)
}

// VaultState keeps the records in a KV v2 mount with cas_required; the
// version is KV's.
type VaultState struct {
	Vault Vault
	Mount string
}

// Read implements State.
func (s VaultState) Read(ctx context.Context, key string) (map[string]string, string, error) {
	sec, err := s.Vault.ReadKV(ctx, s.Mount, key)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return map[string]string{}, "", nil
	case err != nil:
		return nil, "", err
	}
	return sec.Data, strconv.Itoa(sec.Version), nil
}

// Write implements State.
func (s VaultState) Write(ctx context.Context, key string, data map[string]string, version string) (string, error) {
	cas := 0
	if version != "" {
		n, err := strconv.Atoi(version)
		if err != nil {
			return "", ErrConflict // not a version this store gave out: read again
		}
		cas = n
	}
	v, err := s.Vault.WriteKVCAS(ctx, s.Mount, key, data, cas)
	if errors.Is(err, vault.ErrCASConflict) {
		return "", ErrConflict
	}
	if err != nil {
		return "", err
	}
	return strconv.Itoa(v), nil
}
