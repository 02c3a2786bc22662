# Policy of the smtp-vault functions. They read and write tenants'
# credentials with check-and-set, patch custom_metadata, and use the derived
# Transit key for data keys. They can never delete or destroy a version, nor
# export or read the Transit key.
#
# Re-authentication of staff needs no path for the staff's own login
# (auth/userpass/login/* and sys/mfa/validate are unauthenticated, and the
# token they yield revokes itself under Vault's default policy); it needs
# the attempt records and the signing key, which it can use but not read.

path "smtp/data/*" {
  capabilities = ["create", "read", "update"]
}

path "smtp/metadata/*" {
  capabilities = ["read", "list", "patch"]
}

path "smtp/metadata/" {
  capabilities = ["list"]
}

path "transit/datakey/plaintext/smtp-credentials" {
  capabilities = ["update"]
}

path "transit/decrypt/smtp-credentials" {
  capabilities = ["update"]
}

path "transit/rewrap/smtp-credentials" {
  capabilities = ["update"]
}

path "smtp-access/data/reauth/*" {
  capabilities = ["create", "read", "update"]
}

path "transit/sign/reauth-signing" {
  capabilities = ["update"]
}

path "transit/verify/reauth-signing" {
  capabilities = ["update"]
}

# The public half of the re-auth signing key (and its minimum version), so
# that functions verify re-auth tokens without a round trip per request.
path "transit/keys/reauth-signing" {
  capabilities = ["read"]
}

# State of the security alert rules (shared/alert): per-user counters and
# burst flags, written with check-and-set.
path "smtp-alerts/data/*" {
  capabilities = ["create", "read", "update"]
}

# The audit chains (shared/audit): each instance fetches one data key of
# the derived MAC key and MACs its records with it; reading a chain's head
# or verifying it unwraps the keys other instances named. The daily sweep
# anchors each chain's head in smtp-audit-anchors, and verify compares.
path "transit/datakey/plaintext/audit-mac" {
  capabilities = ["update"]
}

path "transit/decrypt/audit-mac" {
  capabilities = ["update"]
}

path "smtp-audit-anchors/data/*" {
  capabilities = ["create", "read", "update"]
}
