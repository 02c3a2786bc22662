# Policy of the backup function: take the daily raft snapshot (which it
# encrypts under a KMS key outside this Vault). Restoring a snapshot
# (sys/storage/raft/snapshot-force) is an operator action with the
# operator's own token, never a function's.

path "sys/storage/raft/snapshot" {
  capabilities = ["read"]
}

path "smtp-alerts/data/*" {
  capabilities = ["create", "read", "update"]
}

# The audit chains' MAC key (shared/audit): one data key per instance,
# and unwrapping the key another instance named on the chain's head.
path "transit/datakey/plaintext/audit-mac" {
  capabilities = ["update"]
}

path "transit/decrypt/audit-mac" {
  capabilities = ["update"]
}
