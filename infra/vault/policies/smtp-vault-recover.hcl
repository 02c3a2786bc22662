# Policy of the recover function (on-demand invocation after a VPS loss):
# re-create the tenant's MailU admin from Vault, so it opens the stored
# password, records the new MailU connection, and may rotate to a fresh
# password. It serves no HTTP route.

path "smtp/data/+/admin" {
  capabilities = ["create", "read", "update"]
}

path "smtp/data/+/mailu" {
  capabilities = ["create", "read", "update"]
}

path "smtp/data/+/lock" {
  capabilities = ["create", "read", "update"]
}

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
