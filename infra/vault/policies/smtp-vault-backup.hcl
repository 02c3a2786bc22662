# Policy of the backup function: take raft snapshots of Vault (a root
# protected path, hence sudo) and read the raft configuration for the
# console's health view. A snapshot holds Vault's data encrypted by its
# barrier key, useless without the unseal keys; the function encrypts it
# again under a KMS data key before it leaves. Restoring needs the fresh
# Vault's own root token and is never granted here.
#
# The restore check ({"verify": {}}, and after a restore, logged in to
# the restored Vault with this same identity) proves that every tenant's
# credential decrypts: it lists the tenants, reads their records and
# unwraps their data keys. Nothing else of smtp/ and no write.

path "sys/storage/raft/snapshot" {
  capabilities = ["read", "sudo"]
}

path "sys/storage/raft/configuration" {
  capabilities = ["read"]
}

path "smtp/metadata/" {
  capabilities = ["list"]
}

path "smtp/data/+/admin" {
  capabilities = ["read"]
}

path "transit/decrypt/smtp-credentials" {
  capabilities = ["update"]
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

# Its own token, the one grant of Vault's default policy a function uses
# (the role gives its token no default policy): shared/vault's
# TokenPolicies and TokenAlive.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
