package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	vaultapi "github.com/hashicorp/vault/api"
)

// Snapshot streams a raft snapshot of Vault (sys/storage/raft/snapshot)
// into w. The request is bound by ctx only, not by the client's timeout,
// since a large snapshot takes longer than any single API call; Vault's
// client checks that the archive is complete before returning nil. It
// needs a token with read and sudo on that path.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) error {
	return c.call(ctx, "take raft snapshot", func() error {
		return c.api.Sys().RaftSnapshotWithContext(ctx, w)
	})
}

// RestoreSnapshot installs a raft snapshot read from r, replacing all of
// Vault's data (sys/storage/raft/snapshot-force: also a snapshot of another
// cluster, with other unseal keys). Vault then holds the snapshot's
// keyring: unless its unseal keys are the same, it seals itself and must be
// unsealed with the keys of the Vault the snapshot was taken from. Every
// token of the Vault before the restore, including the one used here, is
// gone afterwards. r is read once and not retried.
func (c *Client) RestoreSnapshot(ctx context.Context, r io.Reader) error {
	if err := c.ensureToken(ctx); err != nil {
		return err
	}
	// Not through call: a retry after a re-login would need r again.
	return classify("restore raft snapshot", c.api.Sys().RaftSnapshotRestoreWithContext(ctx, r, true))
}

// TokenAlive says whether this client's token is still known to Vault
// (auth/token/lookup-self). A restore replaces Vault's token store, so the
// token used to restore a snapshot of another Vault dies when the restore,
// which Vault finishes after answering, has taken effect.
func (c *Client) TokenAlive(ctx context.Context) (bool, error) {
	err := c.call(ctx, "look up own token", func() error {
		_, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrForbidden):
		return false, nil
	}
	return false, err
}

// Unseal submits one unseal key share (sys/unseal) and reports whether
// Vault is still sealed afterwards. It needs no token.
func (c *Client) Unseal(ctx context.Context, key string) (sealed bool, err error) {
	s, err := c.anon.Sys().UnsealWithContext(ctx, key)
	if err != nil {
		return true, classify("unseal", err)
	}
	return s.Sealed, nil
}

// Leader is what sys/leader says about the active node.
type Leader struct {
	HAEnabled bool
	IsSelf    bool
	Address   string // the leader's API address; "" when none is known
}

// Leader reads sys/leader; it needs no token.
func (c *Client) Leader(ctx context.Context) (Leader, error) {
	l, err := c.anon.Sys().LeaderWithContext(ctx)
	if err != nil {
		return Leader{}, classify("read leader", err)
	}
	return Leader{HAEnabled: l.HAEnabled, IsSelf: l.IsSelf, Address: l.LeaderAddress}, nil
}

// RaftPeer is one server of the raft cluster.
type RaftPeer struct {
	NodeID  string `json:"node_id"`
	Address string `json:"address"` // cluster address
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}

// RaftPeers reads sys/storage/raft/configuration: the servers of the raft
// cluster. It needs read on that path.
func (c *Client) RaftPeers(ctx context.Context) ([]RaftPeer, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, "read raft configuration", func() (err error) {
		s, err = c.api.Logical().ReadWithContext(ctx, "sys/storage/raft/configuration")
		return err
	})
	if err != nil {
		return nil, err
	}
	if s == nil || s.Data == nil {
		return nil, fmt.Errorf("vault: read raft configuration: %w: status %d: empty response", ErrUnavailable, http.StatusOK)
	}
	cfg, _ := s.Data["config"].(map[string]any)
	servers, _ := cfg["servers"].([]any)
	peers := make([]RaftPeer, 0, len(servers))
	for _, v := range servers {
		m, _ := v.(map[string]any)
		id, _ := m["node_id"].(string)
		addr, _ := m["address"].(string)
		leader, _ := m["leader"].(bool)
		voter, _ := m["voter"].(bool)
		peers = append(peers, RaftPeer{NodeID: id, Address: addr, Leader: leader, Voter: voter})
	}
	return peers, nil
}
