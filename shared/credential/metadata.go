package credential

import (
	"context"
	"strconv"
)

// Keys of a credential's KV custom_metadata. They let the sweep and the
// overview decide without reading, let alone decrypting, any secret. The KV
// data stays authoritative: custom_metadata has no check-and-set in Vault,
// so it is a cache that every change rewrites and that a run finding it
// stale (a worker sent by the sweep) repairs from the data.
const (
	MetaLastRotated = "last_rotated"   // RFC 3339, as in the data
	MetaState       = "rotation_state" // StateCurrent or StatePending
	// MetaNoticeFor is the last_rotated of the cycle whose day-173 notice
	// went out, so each cycle gets one notice.
	MetaNoticeFor = "notice_sent_for"
	// MetaCompromised is set by the emergency reset (SPEC section 6) to
	// the incident; any non-empty value shows the tenant as compromised.
	MetaCompromised = "compromised"
	// MetaRotationFailed is when the last rotation failed and its error
	// class ("<RFC 3339> <class>"), until a change goes through: the
	// overview's "rotation failing".
	MetaRotationFailed = "rotation_failed"
	// MetaUsername and MetaWebmailURL copy the record's plain fields, so
	// that the sweep can repair the status index without reading KV data.
	MetaUsername   = "username"
	MetaWebmailURL = "webmail_url"
)

// MetaCompromisedVersion is the key that records, for good, that KV
// version v was declared compromised: "incident=..;by=..;at=..;pending=..".
func MetaCompromisedVersion(v int) string { return "compromised_v" + strconv.Itoa(v) }

// Values of MetaState.
const (
	StateCurrent = "current"
	StatePending = "pending"
)

// stateOf is the metadata that mirrors rec.
func stateOf(rec *Record) map[string]string {
	md := map[string]string{MetaState: StateCurrent, MetaLastRotated: rec.LastRotated, MetaUsername: rec.Username, MetaWebmailURL: rec.WebmailURL}
	if rec.Pending() {
		md[MetaState] = StatePending
	}
	for k, v := range md {
		if v == "" {
			delete(md, k) // an empty value would remove the key
		}
	}
	return md
}

// markState updates custom_metadata with md and the status index with rec
// (index.go), which was just written. The KV data is authoritative, so a
// failure here is logged and corrected by the next change or sweep.
func (s *Service) markState(ctx context.Context, tenantID string, rec *Record, md map[string]string) {
	s.patchState(ctx, tenantID, md)
	s.indexRecord(ctx, tenantID, rec, md)
}

// patchState is markState's custom_metadata half, for a change whose
// index entry says so already (indexPending).
func (s *Service) patchState(ctx context.Context, tenantID string, md map[string]string) {
	if err := s.cfg.Vault.PatchCustomMetadata(ctx, AdminPath(tenantID), md); err != nil {
		s.log.WarnContext(ctx, "update credential metadata", "tenant_id", tenantID, "error", err)
	}
}
