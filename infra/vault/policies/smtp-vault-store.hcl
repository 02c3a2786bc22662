# Policy of the store function (provisioning a tenant, and the store
# route). It writes a tenant's credential, MailU connection and change
# lock with check-and-set, seals new secrets with fresh Transit data keys
# and opens the current ones (store is idempotent: it tests the password
# in force before replacing it). It patches custom_metadata only, and
# verifies re-auth tokens with the public half of the signing key.

path "smtp/data/+/admin" {
  capabilities = ["create", "read", "update"]
}

path "smtp/data/+/mailu" {
  capabilities = ["create", "read", "update"]
}

path "smtp/data/+/lock" {
  capabilities = ["create", "read", "update"]
}

# custom_metadata only: max_versions, delete_version_after and
# cas_required stay as vault-setup set them, so no function can shorten
# a credential's history or erase a compromise mark.
path "smtp/metadata/+/admin" {
  capabilities = ["patch"]
  allowed_parameters = {
    "custom_metadata" = []
  }
}

path "transit/datakey/plaintext/smtp-credentials" {
  capabilities = ["update"]
}

path "transit/decrypt/smtp-credentials" {
  capabilities = ["update"]
}

# Re-auth tokens of the store route: read the public half (Transit
# answers with public keys and versions only); verify for key types that
# cannot be checked locally.
path "transit/keys/reauth-signing" {
  capabilities = ["read"]
}

path "transit/verify/reauth-signing" {
  capabilities = ["update"]
}

# State of the security alert rules when ALERT_STATE_BUCKET is not set
# (template.yaml sets it; then this path is unused).
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

# The status index (shared/credential/index.go): every change marks its
# tenant pending there first and rewrites the entry after; nothing secret.
path "smtp-index/data/*" {
  capabilities = ["create", "read", "update"]
}

# Its own token, the one grant of Vault's default policy a function uses
# (the role gives its token no default policy): shared/vault's
# TokenPolicies and TokenAlive.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
