package backup

import (
	"context"
	"time"

	"smtp-vault/shared/vault"
)

// Colours of the last good backup's age in the console.
const (
	ColourGreen = "green" // younger than AmberAfter
	ColourAmber = "amber" // younger than RedAfter
	ColourRed   = "red"   // older
	ColourNone  = "none"  // no backup at all
)

// Ages at which the last backup turns amber and red: a daily backup that
// missed one night is amber, two nights red.
const (
	AmberAfter = 24 * time.Hour
	RedAfter   = 48 * time.Hour
)

// Colour grades the age of the last good backup; ok is false when there
// is none.
func Colour(age time.Duration, ok bool) string {
	switch {
	case !ok:
		return ColourNone
	case age < AmberAfter:
		return ColourGreen
	case age < RedAfter:
		return ColourAmber
	}
	return ColourRed
}

// VaultStatus is what the health check reads from Vault; *vault.Client
// implements it.
type VaultStatus interface {
	Health(ctx context.Context) (vault.Health, error)
	Leader(ctx context.Context) (vault.Leader, error)
	RaftPeers(ctx context.Context) ([]vault.RaftPeer, error)
}

// Health is Vault's state for the console: sealed or not, raft leader and
// peers, and the last good backup.
type Health struct {
	Sealed       bool             `json:"sealed"`
	Version      string           `json:"version"`
	Leader       string           `json:"leader"`
	Peers        []vault.RaftPeer `json:"peers"`
	LastBackup   *Info            `json:"last_backup,omitempty"`
	BackupAge    time.Duration    `json:"backup_age_ns"`
	BackupColour string           `json:"backup_colour"`
	// Errors lists what could not be read (Vault down, sealed, bucket
	// unreachable); the fields it concerns are left empty.
	Errors []string `json:"errors,omitempty"`
}

// VaultHealth reads Vault's state through v and the last good backup from
// the bucket. It never fails as a whole: what cannot be read is named in
// Errors, so a sealed or unreachable Vault still gets a report.
func (s *Service) VaultHealth(ctx context.Context, v VaultStatus) Health {
	h := VaultState(ctx, v)
	info, ok, err := s.LastGood(ctx)
	if err != nil {
		h.Errors = append(h.Errors, "backups: "+err.Error())
		h.BackupColour = ColourNone
		return h
	}
	if ok {
		h.LastBackup = &info
		h.BackupAge = s.cfg.Now().Sub(info.Time)
	}
	h.BackupColour = Colour(h.BackupAge, ok)
	return h
}

// VaultState is the Vault half of the health report: sealed, version,
// leader and raft peers; what cannot be read is named in Errors. The
// backup fields are left for the caller.
func VaultState(ctx context.Context, v VaultStatus) Health {
	var h Health
	if vh, err := v.Health(ctx); err != nil {
		h.Errors = append(h.Errors, "vault health: "+err.Error())
	} else {
		h.Sealed, h.Version = vh.Sealed, vh.Version
	}
	if !h.Sealed {
		if l, err := v.Leader(ctx); err != nil {
			h.Errors = append(h.Errors, "vault leader: "+err.Error())
		} else {
			h.Leader = l.Address
		}
		if p, err := v.RaftPeers(ctx); err != nil {
			h.Errors = append(h.Errors, "raft peers: "+err.Error())
		} else {
			h.Peers = p
		}
	}
	return h
}
