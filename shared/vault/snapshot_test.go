package vault_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"testing"

	"smtp-vault/shared/vault"
)

func rootClient(t *testing.T) *vault.Client {
	t.Helper()
	c, err := vault.New(vault.Config{Address: local.Addr, AuthMethod: vault.AuthToken, Token: local.Root().Token()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSnapshotAndRaftStatus: a snapshot streams as Vault's archive (with
// its sealed checksums), the functions' AppRole may not take one, and the
// single local node is the raft leader.
func TestSnapshotAndRaftStatus(t *testing.T) {
	ctx := context.Background()
	c := rootClient(t)
	var buf bytes.Buffer
	if err := c.Snapshot(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatalf("snapshot is not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if len(names) == 0 || names[len(names)-1] != "SHA256SUMS.sealed" {
		t.Fatalf("snapshot archive holds %v", names)
	}

	// The functions' own policy has no snapshot capability; locally the
	// AppRole also carries the backup policy, so use the operator token.
	op, err := vault.New(vault.Config{Address: local.Addr, AuthMethod: vault.AuthToken, Token: local.OperatorToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Snapshot(ctx, io.Discard); !errors.Is(err, vault.ErrForbidden) {
		t.Fatalf("operator snapshot: got %v, want ErrForbidden", err)
	}

	peers, err := c.RaftPeers(ctx)
	if err != nil || len(peers) != 1 || !peers[0].Leader || !peers[0].Voter || peers[0].NodeID == "" {
		t.Fatalf("raft peers %+v %v", peers, err)
	}
	l, err := c.Leader(ctx)
	if err != nil || !l.IsSelf || l.Address == "" {
		t.Fatalf("leader %+v %v", l, err)
	}
	if sealed, err := c.Unseal(ctx, local.UnsealKey()); err != nil || sealed {
		t.Fatalf("unseal of an unsealed Vault: sealed=%v %v", sealed, err)
	}
}
