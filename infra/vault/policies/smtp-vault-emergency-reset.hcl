# Policy of the emergency-reset function (one tenant, and the compromise
# response over many): set a new password directly under the change lock,
# mark the compromised version in custom_metadata (only custom_metadata:
# the history that holds the compromised version stays), list the
# tenants a compromise response covers.

path "smtp/data/+/admin" {
  capabilities = ["create", "read", "update"]
}

path "smtp/data/+/mailu" {
  capabilities = ["read"]
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

path "transit/keys/reauth-signing" {
  capabilities = ["read"]
}

path "transit/verify/reauth-signing" {
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

# Compromise responses: the request and each tenant's outcome, under
# smtp/incidents/ (not a tenant id, so never listed as one).
path "smtp/data/incidents/*" {
  capabilities = ["create", "read", "update"]
}

path "smtp/metadata/incidents/*" {
  capabilities = ["list"]
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
