# Policy of the daily rotation sweep: it lists every tenant's metadata
# (no secret read), marks the day-173 notice in custom_metadata, and runs
# the rotations within its own budget itself (the same steps as the rotate
# function). It serves no HTTP route, so it verifies no re-auth token.

path "smtp/data/+/admin" {
  capabilities = ["create", "read", "update"]
}

# Read to reach MailU; written only to finish an interrupted endpoint
# move (promoteEndpoints): the sweep resumes every pending tenant.
path "smtp/data/+/mailu" {
  capabilities = ["create", "read", "update"]
}

path "smtp/data/+/lock" {
  capabilities = ["create", "read", "update"]
}

path "smtp/metadata/" {
  capabilities = ["list"]
}

path "smtp/metadata/+/admin" {
  capabilities = ["read", "patch"]
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

# The sweep anchors each audit chain's head once a day.
path "smtp-audit-anchors/data/*" {
  capabilities = ["create", "read", "update"]
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
