package vault

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// Secret is one version of a KV v2 secret. All values this project stores
// are strings; anything else is rendered with fmt.
type Secret struct {
	Data           map[string]string
	Version        int
	CreatedTime    time.Time
	CustomMetadata map[string]string
}

// Metadata is the version-independent metadata of a KV v2 secret.
type Metadata struct {
	CurrentVersion int
	OldestVersion  int
	UpdatedTime    time.Time
	CustomMetadata map[string]string
}

// Read returns the current version of the secret at path (relative to the
// KV mount). A missing or deleted current version is ErrNotFound.
func (c *Client) Read(ctx context.Context, path string) (*Secret, error) {
	return c.ReadKV(ctx, c.cfg.KVMount, path)
}

// ReadKV is Read on another KV v2 mount.
func (c *Client) ReadKV(ctx context.Context, mount, path string) (*Secret, error) {
	var s *vaultapi.KVSecret
	err := c.call(ctx, "read "+mount+"/"+path, func() (err error) {
		s, err = c.api.KVv2(mount).Get(ctx, path)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toSecret(s), nil
}

// ReadVersion returns one version of the secret at path.
func (c *Client) ReadVersion(ctx context.Context, path string, version int) (*Secret, error) {
	var s *vaultapi.KVSecret
	err := c.call(ctx, fmt.Sprintf("read %s version %d", path, version), func() (err error) {
		s, err = c.api.KVv2(c.cfg.KVMount).GetVersion(ctx, path, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toSecret(s), nil
}

// WriteCAS writes data as a new version of the secret at path, only if the
// current version is cas (0: only if the secret does not exist yet). It
// returns the new version; a lost race is ErrCASConflict.
func (c *Client) WriteCAS(ctx context.Context, path string, data map[string]string, cas int) (int, error) {
	return c.WriteKVCAS(ctx, c.cfg.KVMount, path, data, cas)
}

// WriteKVCAS is WriteCAS on another KV v2 mount.
func (c *Client) WriteKVCAS(ctx context.Context, mount, path string, data map[string]string, cas int) (int, error) {
	body := make(map[string]any, len(data))
	for k, v := range data {
		body[k] = v
	}
	var s *vaultapi.KVSecret
	err := c.call(ctx, "write "+mount+"/"+path, func() (err error) {
		s, err = c.api.KVv2(mount).Put(ctx, path, body, vaultapi.WithCheckAndSet(cas))
		return err
	})
	if err != nil {
		return 0, err
	}
	if s == nil || s.VersionMetadata == nil {
		return 0, fmt.Errorf("vault: write %s/%s: %w: no version in response", mount, path, ErrUnavailable)
	}
	return s.VersionMetadata.Version, nil
}

// ReadMetadata returns the metadata of the secret at path without reading
// any secret data.
func (c *Client) ReadMetadata(ctx context.Context, path string) (*Metadata, error) {
	var m *vaultapi.KVMetadata
	err := c.call(ctx, "read metadata "+path, func() (err error) {
		m, err = c.api.KVv2(c.cfg.KVMount).GetMetadata(ctx, path)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Metadata{
		CurrentVersion: m.CurrentVersion,
		OldestVersion:  m.OldestVersion,
		UpdatedTime:    m.UpdatedTime,
		CustomMetadata: stringMap(m.CustomMetadata),
	}, nil
}

// PatchCustomMetadata merges md into the secret's custom_metadata; keys not
// named are kept. Vault offers no check-and-set on metadata, so callers use
// it only for values whose last writer may win. An empty value removes
// the key.
func (c *Client) PatchCustomMetadata(ctx context.Context, path string, md map[string]string) error {
	in := vaultapi.KVMetadataPatchInput{CustomMetadata: make(map[string]any, len(md))}
	for k, v := range md {
		if v == "" {
			in.CustomMetadata[k] = nil // Vault refuses empty values; null removes the key
			continue
		}
		in.CustomMetadata[k] = v
	}
	return c.call(ctx, "patch metadata "+path, func() error {
		return c.api.KVv2(c.cfg.KVMount).PatchMetadata(ctx, path, in)
	})
}

// List returns the keys directly below path (folders end in "/"), sorted.
// An empty or missing folder is an empty list, not an error.
func (c *Client) List(ctx context.Context, path string) ([]string, error) {
	var s *vaultapi.Secret
	full := c.cfg.KVMount + "/metadata/" + strings.TrimPrefix(path, "/")
	err := c.call(ctx, "list "+path, func() (err error) {
		s, err = c.api.Logical().ListWithContext(ctx, full)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s == nil || s.Data == nil {
		return nil, nil
	}
	raw, _ := s.Data["keys"].([]any)
	keys := make([]string, 0, len(raw))
	for _, k := range raw {
		if ks, ok := k.(string); ok {
			keys = append(keys, ks)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

func toSecret(s *vaultapi.KVSecret) *Secret {
	out := &Secret{Data: stringMap(s.Data), CustomMetadata: stringMap(s.CustomMetadata)}
	if s.VersionMetadata != nil {
		out.Version = s.VersionMetadata.Version
		out.CreatedTime = s.VersionMetadata.CreatedTime
	}
	return out
}

func stringMap(in map[string]any) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		switch t := v.(type) {
		case nil:
		case string:
			out[k] = t
		default:
			out[k] = fmt.Sprint(t)
		}
	}
	return out
}
